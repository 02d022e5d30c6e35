"""``lgsp fuzz``: schemathesis generates requests from each service's OpenAPI document and
checks that none is answered with a 5xx (bad input gets a readable 4xx, never a crash)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from shared import services as registry

SERVICES = registry.NAMES


def fuzz(url: str, examples: int, report_dir: Path | None = None, token: str | None = None) -> tuple[int, str]:
    """Run schemathesis against one service, as the holder of ``token`` when given (past the
    access check, where the routes' own code runs); returns its exit code and the tail of its
    output."""
    st = Path(sys.executable).with_name("st")
    cmd = [
        str(st),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        "--seed",
        "2026",
    ]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    # schemathesis cannot generate PDF bodies; fuzz_edges, the documents tests and
    # tests/test_dossier_files.py (type by content, size) cover the uploads
    cmd += ["--exclude-path", "/v1/documents/files", "--exclude-path", "/v1/files"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    return proc.returncode, (proc.stdout + proc.stderr)[-3000:]


def malformed_tokens(kid: str) -> list[str]:
    """Bearer tokens a resource server must answer with 401: not JWTs, broken encodings, the
    algorithm confused with the key's, no signature, odd header values, a very long one."""

    def b64(value) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = b64({"sub": "x", "aud": "lgsp", "exp": 4102444800, "iat": 0, "realm_access": {"roles": ["operator"]}})
    return [
        "not-a-token",
        "a.b.c",
        "...",
        "é.é.é",
        "x" * 8000,
        f"{b64({'alg': 'none'})}.{claims}.",
        f"{b64({'alg': 'ES256', 'kid': kid})}.{claims}.{b64(b'sig')}",
        f"{b64({'alg': 'HS256', 'kid': kid})}.{claims}.{b64(b'sig')}",
        f"{b64({'alg': 'RS256', 'kid': [kid]})}.{claims}.{b64(b'sig')}",
        f"{b64({'alg': 'RS256', 'kid': kid, 'crit': ['exp']})}.{claims}.{b64(b'sig')}",
        f"{b64({'alg': 'RS256', 'kid': kid})}.{b64(b'[1, 2]')}.{b64(b'sig')}",
        f"{b64({'alg': 'RS256', 'kid': kid})}.{b64(b'not json')}.{b64(b'sig')}",
        f"{b64(b'[]')}.{claims}.{b64(b'sig')}",
    ]


async def fuzz_edges(url: str, kid: str, token: str) -> list[str]:
    """The edge, beyond the schema: every route of ``url`` with each malformed token, every
    route taking a body with an oversize one (declared, and with a valid ``token``), and a slow
    body abandoned half-way. Returns what was answered with a 5xx (or not answered)."""
    import httpx

    problems: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        paths = (await http.get(f"{url}/openapi.json")).json()["paths"]
        routes = [(m.upper(), re.sub(r"\{[^}]+\}", "X", p)) for p, ops in paths.items() for m in ops]
        for method, path in routes:
            for bad in malformed_tokens(kid):
                r = await http.request(method, url + path, headers={"Authorization": f"Bearer {bad}".encode()}, json={})
                if r.status_code >= 500:
                    problems.append(f"{method} {path} with a malformed token ({bad[:40]!r}): {r.status_code}")
            if method in ("POST", "PUT", "PATCH"):
                for auth in ({}, {"Authorization": f"Bearer {token}"}):
                    r = await http.request(
                        method,
                        url + path,
                        headers={**auth, "content-type": "application/json"},
                        content=b"[" + b"0," * 2_000_000 + b"0]",
                    )
                    if r.status_code >= 500:
                        problems.append(
                            f"{method} {path} with a 4 MB body ({'signed in' if auth else 'anonymous'}): "
                            f"{r.status_code}"
                        )
        # a client that announces a large body, sends a little and goes away
        host, port = url.split("//")[1].split(":")
        post = next((p for m, p in routes if m == "POST"), None)
        if post is not None:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"POST {post} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                'Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{"a": '.encode()
            )
            await writer.drain()
            writer.close()
        if (await http.get(f"{url}/health")).status_code != 200:
            problems.append("the service did not answer its health check after the abandoned body")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lgsp fuzz")
    parser.add_argument("--examples", type=int, default=300, help="examples per operation")
    for s in registry.SERVICES:
        parser.add_argument(f"--{s.name}-url", default=f"http://127.0.0.1:{s.port}")
    args = parser.parse_args(argv)
    from ops.identity import IDENTITIES

    token = IDENTITIES.operator.token_sync()
    kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    failed = 0
    for s in SERVICES:
        rc, out = fuzz(getattr(args, f"{s}_url"), args.examples, token=token)
        print(f"[fuzz] {s}: {'no 5xx' if rc == 0 else 'FAILURES'}\n{out}", flush=True)
        edges = asyncio.run(fuzz_edges(getattr(args, f"{s}_url"), kid, token))
        print(
            f"[fuzz] {s} edges (malformed tokens, oversize and abandoned bodies): "
            f"{'no 5xx' if not edges else 'FAILURES'}",
            *edges,
            sep="\n",
            flush=True,
        )
        failed += rc != 0 or bool(edges)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
