"""The single error hierarchy of lottery-llm.

Every error the framework raises on purpose derives from :class:`LotteryError` and from
the builtin it refines, as langgraph's errors do: bad input and settings are ``ValueError``,
an unknown tool or run a ``KeyError``, a failure of a server, a store, a tool or a model's
preparation a ``RuntimeError`` (never ``ConnectionError``: retries are decided on those,
and a ``ModelServerError`` is raised once the retries are spent).
Messages say what happened and what to do about it, on one line, because the
CLI prints them as they are. Each class has a stable ``code`` (the CLI prints it
after the message, scripts and logs can match it) and the ``exit_code`` the CLI
exits with; docs/errors.md lists them all, generated from this module.
"""

from __future__ import annotations


class LotteryError(Exception):
    """Base class of every error raised by lottery-llm."""

    #: Exit status the CLI uses for this kind of error.
    exit_code: int = 1
    #: Stable identifier of this kind of error (docs/errors.md).
    code: str = "lottery_error"


class InputError(LotteryError, ValueError):
    """The caller's input is unusable (empty, too long, not text, ...)."""

    code = "invalid_input"

    exit_code = 2


class ConfigurationError(LotteryError, ValueError):
    """A setting is missing or invalid (URL, model name, limits, paths)."""

    code = "invalid_configuration"

    exit_code = 2


class ModelServerError(LotteryError, RuntimeError):
    """The OpenAI-compatible model server could not be reached or failed."""

    code = "model_server_failed"


class ModelRequestError(ModelServerError):
    """The model server answered but refused the request (HTTP 4xx: a prompt longer than the
    model's window, an unknown model name): sending it again gives the same answer."""

    code = "model_request_refused"


class ServerStartError(ModelServerError):
    """A local model server could not be started (port taken, crashed, timed out)."""

    code = "model_server_start_failed"


class UnknownModelError(ConfigurationError):
    """The model name is not in the catalogue, not a checkpoint directory, not a HF id."""

    code = "unknown_model"


class ModelPrepareError(LotteryError, RuntimeError):
    """A model could not be fetched, verified or converted (checksum, disk, memory)."""

    code = "model_prepare_failed"


class EngineBuildError(ModelPrepareError):
    """Building a model-server engine (llama.cpp's server) failed or cannot start."""

    code = "engine_build_failed"


class StoreError(LotteryError, RuntimeError):
    """A knowledge base, memory or run store failed."""

    code = "store_failed"


class ToolError(LotteryError, RuntimeError):
    """A tool could not run or its run failed."""

    code = "tool_failed"


class ToolNotFoundError(ToolError, KeyError):
    """The requested tool is not in the registry."""

    code = "tool_not_found"

    exit_code = 2

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ToolArgumentsError(ToolError, ValueError):
    """The tool's arguments failed its schema; nothing was run."""

    code = "invalid_tool_arguments"

    exit_code = 2


class SandboxError(ToolError):
    """Sandboxed code broke a limit or a rule (time, memory, output, imports)."""

    code = "sandbox_refused"


class SandboxUnavailableError(SandboxError):
    """The kernel cannot confine model-written code (no Landlock or seccomp) and the
    sandbox is strict: no program ran. The run stops rather than run code unconfined."""

    code = "sandbox_unavailable"

    exit_code = 2


class DatabaseURLError(StoreError):
    """``LOTTERY_DATABASE_URL`` is not a SQLite or PostgreSQL URL this framework can use."""

    code = "invalid_database_url"

    exit_code = 2


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached, opened or written (server down, read-only file)."""

    code = "database_unavailable"


class SchemaVersionError(StoreError):
    """The database was written by a newer lottery-llm whose schema this version does not know."""

    code = "schema_too_new"


class RunNotFoundError(StoreError, KeyError):
    """No run with that id is stored."""

    code = "run_not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunConflictError(StoreError):
    """Another live process is writing the same run; nothing was changed."""

    code = "run_conflict"


class RemoteRunError(LotteryError, RuntimeError):
    """A run on a graph server could not be completed on any worker within its attempts."""

    code = "remote_run_failed"
