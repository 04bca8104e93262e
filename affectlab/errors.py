"""User errors: what an entry point reports as one line and exit code 2 (tracebacks are for bugs).

`UserError` is the base of every error caused by what the user gave (arguments, files, models,
refused options). Data errors raised by the builders (`dataset_builders.common.DataFormatError`) and
the persona contract (`ContractError`) are treated the same way by `affectlab.cli.run_entry_point`.
"""

from __future__ import annotations


class UserError(ValueError):
    """An error in what the user asked for; its message says what is wrong and how to fix it."""


class ArgumentError(UserError):
    """A bad or refused argument; the message starts with the argument's name."""

    def __init__(self, argument: str, message: str):
        self.argument = argument.lstrip("-")
        super().__init__(f"--{self.argument}: {message}")


class ModelNotFoundError(UserError):
    """`model_name_or_path` is neither a folder nor a Hub id that can be had."""
