"""Hostile FastAGI peers in their own process (so the test process and this one each hold only
their own end of the connections, well inside common open-file limits).

    python -m tests.agi.flood_peer PORT IDLE HALF_ENV NEWLINES

opens IDLE silent connections, HALF_ENV that send half an environment block and stop, NEWLINES
that send only newlines; prints ``ready <closed>`` once every connection is open and the newline
ones were closed by the server (``closed`` counts them), then holds the rest open until stdin
closes.
"""

from __future__ import annotations

import asyncio
import resource
import sys


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"flood_peer: open-file hard limit {hard} is below the {needed} needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def main(port: int, idle: int, half: int, newlines: int) -> None:
    held: list[asyncio.StreamWriter] = []
    closers: list[asyncio.Task[bytes]] = []
    for i in range(idle + half + newlines):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if i < idle:
            held.append(writer)
        elif i < idle + half:
            writer.write(b"agi_network: yes\nagi_network_script: t\n")  # never ends the block
            held.append(writer)
        else:
            writer.write(b"\n" * 64)
            closers.append(asyncio.ensure_future(reader.read()))
    results = await asyncio.gather(*closers, return_exceptions=True)
    closed = sum(1 for r in results if r == b"" or isinstance(r, ConnectionResetError))
    print(f"ready {closed}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the test is done
    for writer in held:
        writer.close()


if __name__ == "__main__":
    port, idle, half, newlines = (int(a) for a in sys.argv[1:5])
    raise_open_file_limit(idle + half + newlines + 256)
    asyncio.run(main(port, idle, half, newlines))
