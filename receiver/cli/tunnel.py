"""``framehook serve --tunnel``: run a tunnel client for as long as the receiver runs.

Apiframe must reach the receiver, and a laptop is not reachable from the internet: a tunnel
client (cloudflared, ngrok) gives it a public URL. Rather than have the user start one in
another terminal and copy its URL into ``FRAMEHOOK_PUBLIC_URL``, ``serve`` starts the
installed client against its own port, reads the public URL from the client's log, and stops
the client when it stops, so no stray client keeps a tunnel (or ngrok's one free session) open.

The client stays in ``serve``'s process group on purpose: a terminal's Ctrl-C or hang-up
reaches both, so closing the terminal never leaves an orphaned client behind, and a signal
sent to ``serve`` alone (``kill``, a supervisor) stops the client on the way out. Only a
SIGKILL of ``serve`` leaves the client running, until it next writes to its closed pipe.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from ipaddress import ip_address
from types import FrameType
from typing import IO, Any, Literal, NoReturn, cast

from rich.markup import escape

from receiver.cli.config import err, fail
from receiver.errors import FramehookError
from receiver.settings import Settings

__all__ = ["TunnelError", "TunnelKind", "open_tunnel", "tunnel_target_host", "tunneled"]

TunnelKind = Literal["cloudflared", "ngrok"]

_INSTALL = {
    "cloudflared": "https://developers.cloudflare.com/cloudflare-one/connections/"
    "connect-networks/downloads/",
    "ngrok": "https://ngrok.com/download (then `ngrok config add-authtoken <token>`)",
}
_STOP_GRACE_SECONDS = 5.0
_TAIL_LINES = 20
_SHOWN_CHARACTERS = 300

# cloudflared frames a quick tunnel's URL in a box on standard error:
#   ... INF |  https://four-random-words.trycloudflare.com                      |
# (its padding is not always right, so no closing bar is required). Other lines hold other
# https URLs (its docs; api.trycloudflare.com in an error): only the box counts, or a
# quick tunnel's host, which is dashed words.
_CLOUDFLARED_BOX = re.compile(r"\|\s+(https?://[^\s|]+)")
_CLOUDFLARED_HOST = re.compile(r"https://[a-z0-9]+(?:-[a-z0-9]+)+\.trycloudflare\.com\b")
# ngrok v3 with --log-format=json: {"msg":"started tunnel", ..., "url":"https://....ngrok-free.app"};
# the logfmt form, should a configuration file force it: msg="started tunnel" ... url=https://...
_NGROK_LOGFMT = re.compile(r'msg="started tunnel".*?\burl=(https?://\S+)')


class TunnelError(FramehookError):
    """The tunnel client is not installed, exited, or printed no public URL in time; the
    message is one line naming the client and what it last said."""


def tunnel_target_host(host: str) -> str:
    """The address the tunnel client forwards to for a receiver bound to ``host``.

    A wildcard or loopback bind is reached on ``127.0.0.1`` (never ``localhost``, which may
    resolve to ``::1`` first); a specific interface on itself. The client connects from this
    address too, so it is the one proxy headers are trusted from.
    """
    if host in ("", "0.0.0.0", "localhost"):  # noqa: S104 (a bind address, compared)
        return "127.0.0.1"
    try:
        address = ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified or address.is_loopback:
        return "127.0.0.1" if address.version == 4 or address.is_unspecified else "::1"
    return host


def _record(line: str) -> dict[str, object] | None:
    """A JSON log line (ngrok's) as a dict; ``None`` for any other line."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _error_of(record: dict[str, object]) -> str | None:
    error = record.get("err")
    return str(error) if error not in (None, "", "<nil>") else None


def _command(kind: TunnelKind, executable: str, origin: str) -> list[str]:
    if kind == "cloudflared":
        # An account-less quick tunnel; an auto-update would restart it under a new URL.
        return [executable, "tunnel", "--no-autoupdate", "--url", origin]
    return [executable, "http", origin, "--log=stdout", "--log-format=json"]


def _cloudflared_url(line: str) -> str | None:
    found = _CLOUDFLARED_BOX.search(line) or _CLOUDFLARED_HOST.search(line)
    if found is None:
        return None
    return found.group(1) if found.re is _CLOUDFLARED_BOX else found.group(0)


def _ngrok_url(line: str) -> str | None:
    record = _record(line)
    if record is not None:
        url = record.get("url")
        started = record.get("msg") == "started tunnel"
        return url if started and isinstance(url, str) and "://" in url else None
    found = _NGROK_LOGFMT.search(line)
    return found.group(1).strip('"') if found else None


_PARSERS: dict[TunnelKind, Callable[[str], str | None]] = {
    "cloudflared": _cloudflared_url,
    "ngrok": _ngrok_url,
}


def _readable(line: str) -> str:
    """A log line as a person reads it: a JSON record as its message and error."""
    record = _record(line)
    if record is not None and "msg" in record:
        error = _error_of(record)
        line = f"{record['msg']}: {error}" if error else str(record["msg"])
    line = " ".join(line.split())
    return line if len(line) <= _SHOWN_CHARACTERS else line[: _SHOWN_CHARACTERS - 1] + "…"


def _is_error(line: str) -> bool:
    record = _record(line)
    if record is not None:
        return _error_of(record) is not None
    # ngrok's plain "ERROR:  ..." block; cloudflared's "<time> ERR ..." lines.
    return line.startswith("ERROR:") or " ERR " in line


class _Output:
    """Reads the client's output to its end on a thread of its own: the pipe never fills
    (a client blocked writing its log would stall the tunnel), and its last lines are kept
    for the error message."""

    def __init__(self, kind: TunnelKind, stream: IO[str]) -> None:
        self.url: str | None = None
        self.done = threading.Event()  # set when the URL shows or the output ends
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._parse = _PARSERS[kind]
        self._thread = threading.Thread(
            target=self._read, args=(stream,), name=f"{kind}-output", daemon=True
        )
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for raw in stream:
                line = raw.strip()
                # ngrok prints its errors as a block of lines, some just "ERROR:".
                if line.removeprefix("ERROR:").strip():
                    self.tail.append(line)
                if self.url is None and (url := self._parse(line)):
                    self.url = url.rstrip("/")
                    self.done.set()
        finally:
            stream.close()
            self.done.set()

    def last_words(self) -> str:
        """The client's first error line among its last ones, else its last line."""
        lines = list(self.tail)
        said = next((line for line in lines if _is_error(line)), lines[-1] if lines else "")
        return _readable(said) if said else "(no output)"

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextmanager
def open_tunnel(
    kind: TunnelKind, port: int, *, host: str = "127.0.0.1", timeout: float = 30.0
) -> Iterator[str]:
    """Run the ``kind`` tunnel client against ``host:port`` and yield its public URL.

    The client is stopped when the block ends, however it ends: SIGTERM, then SIGKILL after
    a few seconds' grace.

    Args:
        kind: ``cloudflared`` (a quick tunnel, no account needed) or ``ngrok`` (v3, with an
            authtoken configured).
        port: the receiver's port.
        host: the address the receiver is bound to (see ``tunnel_target_host``).
        timeout: seconds the client has to print its public URL.

    Yields:
        The public URL, without a trailing slash (``https://....trycloudflare.com``).

    Raises:
        TunnelError: the client is not installed, exited before printing its URL, or printed
            none within ``timeout``.
    """
    executable = shutil.which(kind)
    if executable is None:
        raise TunnelError(f"{kind} is not installed (not found on PATH): see {_INSTALL[kind]}")
    target = tunnel_target_host(host)
    origin = f"http://{'[' + target + ']' if ':' in target else target}:{port}"
    try:
        # The executable is the named client found on PATH; every argument is built here.
        process = subprocess.Popen(  # noqa: S603
            _command(kind, executable, origin),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise TunnelError(f"cannot start {kind} ({executable}): {exc}") from None
    output = _Output(kind, cast("IO[str]", process.stdout))  # stdout=PIPE above
    try:
        output.done.wait(timeout)
        if output.url is None:
            if output.done.is_set():
                try:
                    ended = f"exited (code {process.wait(_STOP_GRACE_SECONDS)})"
                except subprocess.TimeoutExpired:
                    ended = "closed its output"
                raise TunnelError(
                    f"{kind} {ended} before printing a public URL: {output.last_words()}"
                )
            raise TunnelError(
                f"{kind} printed no public URL within {timeout:g} s; it last said: "
                f"{output.last_words()}"
            )
        yield output.url
    finally:
        _stop(process)
        output.join(_STOP_GRACE_SECONDS)


def _exit(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises ``SystemExit`` inside the block, so ``finally`` clauses run.

    uvicorn shuts down gracefully on SIGTERM, then raises it again under the handler it found:
    the default one ends the process on the spot, and the tunnel client would outlive it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def tunneled(kind: TunnelKind | None, settings: Settings) -> Iterator[Settings]:
    """The settings ``serve --tunnel KIND`` runs with, for as long as its tunnel is open.

    Opens a tunnel to the receiver (bound to ``settings.host:settings.port`` already), prints
    its public URL and the webhook URL to give Apiframe, and yields ``settings`` with that
    ``public_url``. The client connects from loopback and passes the sender's address in
    ``X-Forwarded-For`` (and ``https`` in ``X-Forwarded-Proto``): those headers are trusted
    from the client's address only, so logs name who really sent a request rather than
    127.0.0.1 for every one. Loopback is reachable only from this machine, whose processes
    could reach the receiver directly anyway, so this trusts no one new. ``--no-proxy-headers``
    or ``--forwarded-allow-ips`` (or their variables), when given, win. Without ``kind``,
    ``settings`` are yielded as they are.

    Raises:
        typer.Exit: (code 2) the tunnel did not come up; one line says why.
    """
    if kind is None:
        yield settings
        return
    with ExitStack() as stack:
        stack.enter_context(_sigterm_unwinds())
        try:
            public = stack.enter_context(open_tunnel(kind, settings.port, host=settings.host))
        except TunnelError as exc:
            raise fail(str(exc)) from None
        update: dict[str, Any] = {"public_url": public}
        if "proxy_headers" not in settings.model_fields_set:
            update["proxy_headers"] = True
        if "forwarded_allow_ips" not in settings.model_fields_set:
            update["forwarded_allow_ips"] = tunnel_target_host(settings.host)
        err.print(f"framehook: {kind} tunnel: public URL [bold]{escape(public)}[/]", soft_wrap=True)
        err.print(
            "framehook: webhookUrl for your Apiframe jobs: "
            f"[bold]{escape(public)}/webhooks/apiframe[/]",
            soft_wrap=True,
        )
        yield settings.model_copy(update=update)
