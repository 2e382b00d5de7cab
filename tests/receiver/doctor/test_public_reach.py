"""`framehook doctor` through the public URL: `/healthz` is fetched through it, and a URL on a
loopback or private address, which Apiframe on the internet cannot reach, is a warning even
when it answers (and named in the failure when it does not)."""

from __future__ import annotations

from pathlib import Path

from receiver.doctor import Status, check_public_url
from tests.receiver.doctor.test_doctor import deployment, doctor, settings
from tests.support.processes import free_port

__all__ = ["deployment"]  # the running receiver these tests reach, as test_doctor.py has it


def report_line(stdout: str, name: str) -> tuple[str, str]:
    """The printed line of check ``name`` and the hint line under it."""
    lines = stdout.splitlines()
    (index,) = [i for i, line in enumerate(lines) if f"  {name}  " in line]
    following = lines[index + 1] if index + 1 < len(lines) else ""
    return lines[index], following if "hint:" in following else ""


def test_a_loopback_public_url_that_answers_warns(deployment: dict[str, str]) -> None:
    """FRAMEHOOK_PUBLIC_URL on loopback reaches the receiver's /healthz, but Apiframe cannot
    reach it: `warn` with both facts and a hint naming --tunnel; doctor still exits 0."""
    url = deployment["FRAMEHOOK_PUBLIC_URL"]  # the receiver's own loopback address
    code, stdout, _ = doctor(deployment)
    assert code == 0, stdout
    line, hint = report_line(stdout, "public url")
    assert line.startswith("warn")
    assert f"GET {url}/healthz: 200 OK" in line
    assert "127.0.0.1 is a loopback address: Apiframe cannot reach it" in line
    assert "framehook serve --tunnel cloudflared" in hint


def test_an_unreachable_public_url_fails(deployment: dict[str, str]) -> None:
    """Nothing listens behind FRAMEHOOK_PUBLIC_URL: FAIL naming the connection error (and
    that the address is loopback anyway); doctor exits 1."""
    url = f"http://127.0.0.1:{free_port()}"
    code, stdout, _ = doctor({**deployment, "FRAMEHOOK_PUBLIC_URL": url}, "--timeout", "2")
    assert code == 1, stdout
    line, hint = report_line(stdout, "public url")
    assert line.startswith("FAIL")
    assert f"GET {url}/healthz: ConnectError" in line
    assert "loopback address" in line
    assert "tunnel or proxy forwarding to it" in hint
    assert stdout.rstrip().endswith("framehook is not ready")


def test_localhost_is_loopback_too(deployment: dict[str, str], tmp_path: Path) -> None:
    """A name for this machine (localhost) warns like its address."""
    port = deployment["FRAMEHOOK_PUBLIC_URL"].rsplit(":", 1)[1]
    url = f"http://localhost:{port}"
    (check,) = check_public_url(settings(tmp_path, public_url=url))
    assert check.status is Status.WARN
    assert "200 OK" in check.detail
    assert "localhost is this machine (loopback)" in check.detail


def test_a_private_address_is_named_in_the_failure(tmp_path: Path) -> None:
    """A LAN address (10/8) that does not answer: FAIL, saying it is private besides."""
    (check,) = check_public_url(settings(tmp_path, public_url="http://10.255.255.1:9"), 0.2)
    assert check.status is Status.FAIL
    assert "10.255.255.1 is a private address: Apiframe cannot reach it" in check.detail
