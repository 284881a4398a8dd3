"""The one convention of every `python -m …` entry point
(docs/guarantees.md, "Errors in one line"):

- an error ends the command with one line on stderr, `error: <what>`, whose
  text names the file or field (library code raises messages that do);
- exit status 2 for bad input (a missing or malformed file, an option out
  of range, an output that is not ours to replace), 1 for a failure of the
  run itself (Caffe aborting, a full disk, an unexpected exception), 130 on
  Ctrl-C;
- no traceback unless `--debug` is given.

Library code raises; only `run` (called from each module's `__main__`
block) turns an exception into an exit status:

    def main(argv=None):
        args = cli.ArgumentParser(description=...).parse_args(argv)
        ...
    if __name__ == "__main__":
        sys.exit(cli.run(main))
"""
import argparse
import sys
import traceback

from common.version import NAME, VERSION

DECIDES_RESULTS = False   # argument parsing and the wording of errors (common/code_fingerprint.py)

BAD_INPUT = 2
FAILURE = 1
INTERRUPTED = 130


class InputError(ValueError):
    """Bad input that no more specific error class describes."""


class Failure(RuntimeError):
    """A run that could not complete although its input was acceptable."""


# Exceptions that mean the user's input is wrong (exit 2); anything else that
# escapes an entry point is a failure of the run (exit 1).
_INPUT_ERRORS = (ValueError, LookupError, FileNotFoundError, FileExistsError, NotADirectoryError,
                 IsADirectoryError, PermissionError)


def _number(convert, what, ok):
    def check(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected %s, got %r" % (what, text)) from None
        if not ok(value):
            raise argparse.ArgumentTypeError("expected %s, got %r" % (what, text))
        return value
    check.__name__ = what  # argparse names the type in its own messages
    return check


# argparse `type=` checkers: a count or scale out of range is refused naming
# the option (argparse prefixes "argument --NAME: "), never clamped or
# replaced by a default (docs/guarantees.md, "Refused before Caffe sees it").
positive_int = _number(int, "a positive integer", lambda v: v > 0)
nonnegative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a positive number", lambda v: v > 0 and v != float("inf"))
seed_list = _number(lambda t: tuple(int(x) for x in t.split(",")),
                    "distinct integers >= 0 separated by commas",
                    lambda v: len(set(v)) == len(v) and all(x >= 0 for x in v))


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the convention's last line (`error: …`, exit 2) and a
    `--debug` flag that `run` reads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help="show the Python traceback of an error")
        self._versioned = False

    def parse_known_args(self, args=None, namespace=None):
        # Every command answers `--version` (common/version.py). It is added
        # here, once the entry point has declared its own options, because
        # two of them already had a `--version VALUE` (CUHK03's images:
        # data_prep, tools.quick_check); theirs is a VersionOr and answers it.
        if not self._versioned:
            self._versioned = True
            try:
                self.add_argument("--version", action="version", version=version_line(),
                                  help="print the package's version and exit")
            except argparse.ArgumentError:
                if not isinstance(self._option_string_actions.get("--version"), VersionOr):
                    raise
        return super().parse_known_args(args, namespace)

    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("error: %s\n" % message)
        sys.exit(BAD_INPUT)


def version_line():
    """What every command's `--version` prints: `reid-caffe <VERSION>`."""
    return "%s %s" % (NAME, VERSION)


class VersionOr(argparse.Action):
    """The action of an entry point's own `--version VALUE` (CUHK03's
    `labeled|detected`, kept under the name the commands have always given
    it): with a value, that option; alone, the package's version, as every
    command's `--version` prints it."""

    def __init__(self, option_strings, dest, **kwargs):
        kwargs["nargs"] = "?"
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None:   # as argparse's action="version": stdout, exit 0
            sys.stdout.write(version_line() + "\n")
            parser.exit()
        setattr(namespace, self.dest, values)


def message(err):
    """The one-line text of an exception (a KeyError's repr quotes drop)."""
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.filename and err.filename not in text:
        text = "%s (%s)" % (err.strerror or text, err.filename)
    return " ".join(text.split())


def exit_status(err):
    """2 for bad input, 1 for a failure of the run."""
    return BAD_INPUT if isinstance(err, _INPUT_ERRORS) else FAILURE


def run(main, argv=None):
    """Call main(argv) under the convention; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        status = main(argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        sys.stderr.write("error: interrupted\n")
        return INTERRUPTED
    except Exception as err:  # the entry point's last resort: one line, no traceback
        if debug:
            traceback.print_exc()
        sys.stderr.write("error: %s\n" % message(err))
        return exit_status(err)
    return status or 0
