"""The project's own exception types.

Every error a person can cause (a config value, a file, a missing dataset) is raised as a
`VaeExplorerError` whose message is one sentence naming the problem and the fix. The CLI prints
it without a traceback; the app shows it with `st.error`.
"""


class VaeExplorerError(Exception):
    """A problem the user can fix; the message says what was wrong and how to fix it."""


class ConfigError(VaeExplorerError):
    """A config file, key, value or command-line flag is wrong."""


class DatasetError(VaeExplorerError):
    """A dataset is unknown, missing or unreadable."""


class CheckpointError(VaeExplorerError):
    """A checkpoint folder is missing, corrupt or of an unsupported format."""


class TrainingError(VaeExplorerError):
    """Training could not go on (for example the loss became NaN or infinite)."""
