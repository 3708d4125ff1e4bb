"""``python -m bench.mock``: the mock OpenAI server (what ``MockServer`` starts)."""

from bench.mock.command import mock_server_command

if __name__ == "__main__":
    mock_server_command(prog_name="python -m bench.mock")
