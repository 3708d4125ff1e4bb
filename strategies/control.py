"""The adaptive strategy's rate controller: rate-limit feedback in, a send rate out (no I/O, no clock).

With ``debt`` the server's latest ``reset-*`` wait, ``target = setpoint + 1/base`` (an answer
reports the debt just after its own admission) and ``τ = max(0.5 s, RTT, 2/base)``:

    rate = base × (1 + (target − debt) / τ)              proportional, clamped to [¼, 1 + setpoint/τ]
    base ← base × exp((target − debt) × dt / (4 τ²))     integral (critically damped for a bucket)

``base`` is capped at the limit the server states (``limit/60``, tokens over the mean call's
tokens; without ``limit-*``, the most ``remaining-*`` ever seen) and starts there once known;
until then it doubles every RTT (slow start), leaving it halved once the debt passes the
target. A 429 pauses sending for its ``retry-after``, keeps the setpoint under half the debt
it was refused at (the bucket's depth) and cuts ``base`` by ``DECREASE`` (halves it in slow
start); one overshoot brings several 429s, so cuts are ``CUT_GAP_S`` apart and a retry's 429
(an echo of an earlier one) cuts nothing. Without ``reset-*`` headers, ``base`` grows by
``INCREASE_PER_S`` of itself a second between 429s: additive increase, multiplicative decrease.

With no rate-limit headers at all (Google's OpenAI-compatible endpoint), 429s are the only signal, and
they say when the bucket is empty: between two of them, what was admitted is what the bucket refilled.
So each 429 at least ``BLIND_SPAN_S`` and ``BLIND_SPAN_CALLS`` after the first sets the ceiling to
``BLIND_MARGIN`` of the admissions a second since the first (``blind_rps``); until then ``base``
grows by ``BLIND_INCREASE_PER_S`` to reach the limit again, and once it is known a 429 moves the
ceiling instead of cutting the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from bench.clients.feedback import RateLimitFeedback, RateLimitInfo

START_RPS: Final = 1.0
MIN_RPS: Final = 0.05
SETPOINT_S: Final = 0.25  # a quarter of the ~1 s bucket OpenAI documents; lowered by 429s
MIN_TAU_S: Final = 0.5
DECREASE: Final = 0.7
INCREASE_PER_S: Final = 0.02
CUT_GAP_S: Final = 0.1  # 429s to sends made before a cut arrive just after it; they are not news
MAX_STEP_S: Final = 1.0  # one update never integrates more than this (e.g. after a long pause)
# A ``reset-*`` longer than a minute is a long window (a day's budget), not a per-minute bucket: it
# paces nothing while at least AMPLE_SHARE of its limit remains, and remaining/reset once less does.
LONG_RESET_S: Final = 60.0
LONG_IMPLIED_WINDOW_S: Final = 3600.0  # a reset whose refill implies a window this long is a long window's
MIN_IMPLIED_RESET_S: Final = 2.0  # ... read only from a reset this long (whole-second rounding at most halves it)
AMPLE_SHARE: Final = 0.1
# OpenAI's buckets hold about a second; a 200 reporting a debt past this comes from a deeper bucket.
DEEP_DEBT_S: Final = 2.0
RECENT_S: Final = 2.0  # how long an answer's headers vouch for the endpoint's state
BLIND_SPAN_S: Final = 2.0  # two 429s this far apart, with this many calls admitted between them, measure
BLIND_SPAN_CALLS: Final = 60  # the refill to within one call (1.7 %)
BLIND_MARGIN: Final = 0.97  # of the refill measured: room for that error and for latency's spread
BLIND_PAUSE_S: Final = 0.5  # the openai SDK's first wait before retrying a 429 that names none
BLIND_INCREASE_PER_S: Final = 0.25  # growth while no refill is measured yet: back to the limit in seconds


@dataclass(kw_only=True)
class Controller:
    """Call ``update`` before each send and ``observe_latency`` after each call; send at ``rate``."""

    tokens_per_call: float
    rate: float = START_RPS
    base: float = START_RPS
    setpoint_s: float = SETPOINT_S
    ceiling: float | None = None
    debt_s: float | None = None
    rtt_s: float | None = None
    slow_start: bool = True
    pause_until: float = 0.0
    window_limited: bool = False  # set by the strategy when C in flight held a send back
    _seen_429s: int = 0
    _seen_fresh_429s: int = 0
    _info: RateLimitInfo | None = None
    _last_cut: float = -math.inf
    _last_step: float | None = None
    _info_seen: float = -math.inf
    _most_remaining: tuple[int, int] = (0, 0)  # requests, tokens
    _depth_s: float = math.inf  # the least debt a 429 was refused at: the bucket's depth
    _long_ceiling: float | None = None  # remaining/reset of a long window running low
    noise_429s: int = 0  # 429s judged not to be about the rate (counted, paused for, not cut for)
    blind_rps: float | None = None  # the refill measured between 429s, with no headers ever seen
    _first_blind: tuple[float, float] | None = None  # (when, calls admitted by then) at the first 429
    _blind_429s: list[float] = field(default_factory=list)  # 429s whose admissions are not all answered yet
    _answered: list[tuple[float, int]] = field(default_factory=list)  # (when, calls answered by then)
    _least_latency_s: float | None = None

    @property
    def tau_s(self) -> float:
        # Slower than the feedback arrives (the RTT, the gap between two sends) and than a deep
        # bucket drains (its setpoint): a minute-sized bucket is steered over tens of seconds.
        return max(MIN_TAU_S, self.rtt_s or 0.0, 2.0 / self.base, self.setpoint_s)

    @property
    def learned_rps(self) -> float:
        """The endpoint's request rate as learned: the stated ceiling, else the rate it settled on."""
        return self.ceiling if self.ceiling is not None else self.base

    def observe_latency(self, latency_s: float) -> None:
        self._least_latency_s = min(latency_s, self._least_latency_s or latency_s)
        self.rtt_s = latency_s if self.rtt_s is None else 0.8 * self.rtt_s + 0.2 * latency_s

    def update(self, now: float, feedback: RateLimitFeedback | None) -> None:
        """Take in what arrived since the last call, then move ``rate`` on by the time elapsed."""
        if feedback is not None:
            if feedback.http_429s > self._seen_429s:
                fresh = feedback.fresh_429s > self._seen_fresh_429s
                self._seen_429s, self._seen_fresh_429s = feedback.http_429s, feedback.fresh_429s
                if self._info is None and not (feedback.last_429 and feedback.last_429.informative):
                    self._blind_429s.append(now)
                self.on_429(now, feedback.last_429, fresh=fresh)
            if self._blind_429s:
                self._blind_marks(now, feedback.responses - feedback.http_429s)
            info = feedback.latest
            if info is not None and info is not self._info:
                self._info, self._info_seen = info, now
                self._on_limits(info)
        self._step(now)

    def on_429(self, now: float, info: RateLimitInfo | None, *, fresh: bool = True) -> None:
        """Pause for ``retry-after``; cut the rate unless it was noise, a retry's 429, or just cut."""
        if info is not None and info.retry_after_s is not None:
            self.pause_until = max(self.pause_until, now + info.retry_after_s)
        debt = self._debt(info) if info is not None else None
        if debt is not None:
            self._depth_s = min(self._depth_s, debt)
            self.setpoint_s = min(self.setpoint_s, debt / 2)
        if self._is_noise(now, info, debt):
            self.noise_429s += 1
            return
        gap = CUT_GAP_S if info is not None else max(CUT_GAP_S, self.rtt_s or 0.0)  # a row: late news
        silent = info is None or (info.retry_after_s is None and not info.capped)
        if fresh and now - self._last_cut >= gap and self._info is None and silent:
            # Nothing says how long to wait: leave the SDK's retries (their first after 0.5 s) the refill.
            self.pause_until = max(self.pause_until, now + BLIND_PAUSE_S)
        if self.blind_rps is not None:  # the refill is measured: the ceiling moved instead
            self.slow_start = False
        elif fresh and now - self._last_cut >= gap:
            self._last_cut = now
            # Slow start doubled the rate within the last RTT: leave it halved, as TCP does.
            self.base = max(MIN_RPS, self.base * (0.5 if self.slow_start else DECREASE))
            self.slow_start = False

    def _blind_marks(self, now: float, answered: int) -> None:
        """With no headers ever seen: the refill between the first 429 and each later one (``blind_rps``).

        A call admitted at a 429's moment is answered a latency later: what was admitted by a 429 is what
        was answered a latency (the least seen) after it. Counted at once, a 1 s latency overstated the
        refill by a quarter."""
        if self._info is not None:
            self._blind_429s.clear()
            return
        self._answered.append((now, answered))
        lag = self._least_latency_s or 0.0
        while self._blind_429s and now - self._blind_429s[0] >= lag:
            when = self._blind_429s.pop(0)
            count = _count_at(self._answered, when + lag)
            if self._first_blind is None:
                self._first_blind = (when, count)
                continue
            since, before = self._first_blind
            if when - since >= BLIND_SPAN_S and count - before >= BLIND_SPAN_CALLS:
                # The bucket held under one call at each 429: the refill is within one call of the count.
                self.blind_rps = max(MIN_RPS, (count - before) / (when - since))
                self.ceiling = self.blind_rps * BLIND_MARGIN
                self.base = min(self.base, self.ceiling)
        oldest = self._blind_429s[0] if self._blind_429s else now
        while len(self._answered) > 1 and self._answered[1][0] <= oldest:
            self._answered.pop(0)

    def _is_noise(self, now: float, info: RateLimitInfo | None, debt: float | None) -> bool:
        """A 429 that says nothing about the rate: its own headers, or (with none) the latest answer's,
        show capacity left and a client not running ahead of the refill."""
        if info is None:  # known only from a finished row: nothing to judge it by
            return False
        if not info.informative:
            latest = self._info
            if latest is None or now - self._info_seen > max(RECENT_S, 2 * self.tau_s):
                return False
            info, debt = latest, self._debt(latest)
            ahead = debt is not None and debt > 2 * self._target_s()
        else:
            ahead = debt is not None and debt >= self._target_s()
        exhausted = info.remaining_requests == 0 or info.remaining_tokens == 0
        return not (exhausted or ahead)

    def _debt(self, info: RateLimitInfo) -> float | None:
        """The short debt: from ``reset-*``, else (a server stating only ``remaining-*``, as Azure does)
        from how far ``remaining`` is below the most ever seen, at that many a minute."""
        debt = _short_debt(info)
        if debt is not None or (info.reset_requests_s is not None or info.reset_tokens_s is not None):
            return debt
        spent = [
            (most - remaining) * 60.0 / most
            for most, remaining in zip(
                self._most_remaining, (info.remaining_requests, info.remaining_tokens), strict=True
            )
            if most > 0 and remaining is not None
        ]
        return max(spent) if spent else None

    def _on_limits(self, info: RateLimitInfo) -> None:
        ceilings = []
        if info.limit_requests:
            ceilings.append(info.limit_requests / 60.0)
        if info.limit_tokens:
            ceilings.append(info.limit_tokens / 60.0 / max(1.0, self.tokens_per_call))
        # No limit stated (some servers send only remaining-*): the most ever remaining will do.
        most_requests = max(self._most_remaining[0], info.remaining_requests or 0)
        most_tokens = max(self._most_remaining[1], info.remaining_tokens or 0)
        self._most_remaining = (most_requests, most_tokens)
        if most_requests and not info.limit_requests:
            ceilings.append(most_requests / 60.0)
        if most_tokens and not info.limit_tokens:
            ceilings.append(most_tokens / 60.0 / max(1.0, self.tokens_per_call))
        self._long_ceiling = _long_window_ceiling(info, self.tokens_per_call)
        if self._long_ceiling is not None:
            ceilings.append(self._long_ceiling)
        if ceilings:
            self.ceiling = min(ceilings)
            if self.slow_start:  # the server said where its limit is: no need to probe for it
                self.base, self.slow_start = self.ceiling, False
        debt = self._debt(info)
        if debt is not None and info.status != 429 and debt > DEEP_DEBT_S and debt < self._depth_s / 2:
            # Admitted while further ahead than a one-second bucket allows: a deeper bucket (it may
            # start full, or part-used by others). Hold that debt rather than drain it to a guess.
            self.setpoint_s = max(self.setpoint_s, debt)
        self.debt_s = debt

    def _target_s(self) -> float:
        # An answer reports the debt just after its own admission, one request's worth (≈ 1/base) up.
        return self.setpoint_s + 1.0 / self.base

    def _step(self, now: float) -> None:
        dt = 0.0 if self._last_step is None else min(MAX_STEP_S, now - self._last_step)
        self._last_step = now
        growing = not self.window_limited  # a rate the window cannot reach would only wind up
        self.window_limited = False
        tau, debt = self.tau_s, self.debt_s
        if self.slow_start:
            if debt is not None and debt > self._target_s():
                self.base, self.slow_start = self.base / 2, False
            elif growing:
                self.base *= 2.0 ** (dt / max(self.rtt_s or 0.0, MIN_TAU_S))
        elif debt is None:
            if growing:
                blind = self._first_blind is not None and self.blind_rps is None
                self.base *= 1.0 + (BLIND_INCREASE_PER_S if blind else INCREASE_PER_S) * dt
        else:
            error = self._target_s() - debt
            # No answer for a while: hold, rather than wind up on an old reading.
            fresh = now - self._info_seen <= max(tau, 2.0 / self.rate)
            if fresh and (error < 0 or growing):
                self.base *= math.exp(error * dt / (4 * tau * tau))
        if self.ceiling is not None:
            self.base = min(self.base, self.ceiling)
        self.base = max(MIN_RPS, self.base)
        if debt is None or self.slow_start:
            self.rate = self.base
        else:
            factor = 1.0 + (self._target_s() - debt) / tau
            self.rate = self.base * min(1.0 + self.setpoint_s / tau, max(0.25, factor))


def _count_at(log: list[tuple[float, int]], at: float) -> float:
    """A count sampled at moments (``log``), read at ``at``: linear between the samples around it."""
    before = max((p for p in log if p[0] <= at), default=log[0])
    after = min((p for p in log if p[0] >= at), default=log[-1])
    if after[0] <= before[0]:
        return float(before[1])
    return before[1] + (after[1] - before[1]) * (at - before[0]) / (after[0] - before[0])


def _short_debt(info: RateLimitInfo) -> float | None:
    """The debt to steer: the longer ``reset-*`` wait of the per-minute buckets (long windows pace
    through ``_long_window_ceiling`` instead: their reset is how long until full, not a pace)."""
    resets = [
        reset
        for reset, remaining, limit in (
            (info.reset_requests_s, info.remaining_requests, info.limit_requests),
            (info.reset_tokens_s, info.remaining_tokens, info.limit_tokens),
        )
        if reset is not None and not _is_long_window(reset, remaining, limit)
    ]
    return max(resets) if resets else None


def _is_long_window(reset: float, remaining: int | None, limit: int | None) -> bool:
    """A window longer than a minute: its reset says so, or the window its refill implies does.

    A day's budget (Groq's requests headers state the day) has a reset under a minute after its first few
    requests: 6 s after one of 14,400 a day. Its refill gives it away: ``reset × limit / used`` is the window
    (86,400 s; a minute's bucket gives 60). Read only from a reset of at least ``MIN_IMPLIED_RESET_S``, so
    that a reset rounded up to whole seconds (one request of a large minute's limit) cannot imply an hour."""
    if reset > LONG_RESET_S:
        return True
    if reset < MIN_IMPLIED_RESET_S or not limit or remaining is None or not 0 <= remaining < limit:
        return False
    return reset * limit / (limit - remaining) >= LONG_IMPLIED_WINDOW_S


def _long_window_ceiling(info: RateLimitInfo, tokens_per_call: float) -> float | None:
    """A long window running low (under AMPLE_SHARE left) paces to what remains over its reset."""
    rates = []
    for reset, remaining, limit, per_call in (
        (info.reset_requests_s, info.remaining_requests, info.limit_requests, 1.0),
        (info.reset_tokens_s, info.remaining_tokens, info.limit_tokens, max(1.0, tokens_per_call)),
    ):
        if reset is not None and _is_long_window(reset, remaining, limit) and remaining is not None:
            if not (limit and remaining >= AMPLE_SHARE * limit):
                rates.append(max(MIN_RPS, remaining / per_call / reset))
    return min(rates) if rates else None
