"""Round trip of the generated Python client against the generated server (test/client-python.test.ts).

Usage: python3 roundtrip.py <project dir> <port>

Sends edge values of every message of test/fixtures/specs/clients.yaml, checks each echo bit for
bit, and prints one canonical JSON line per message sent (test/support/canonical.ts): the test
compares them with what the server decoded. Other checks print {"check": name, "ok": bool,
"detail": text} lines. Exits 0 unless something failed.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import socket
import struct
import sys
from pathlib import Path

sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[attr-defined]
sys.path.insert(0, str(Path(sys.argv[1]) / "clients" / "python"))
c = importlib.import_module("clients_client")

# The fixture's fields: spec name -> (Python name, type). Types: a primitive, "str", "bytes",
# "E" (an enum), "S:<struct>", and any of these followed by "[]" for an array.
STRUCTS = {
    "Point": {"x": ("x", "f32"), "y": ("y", "f64")},
    "Inner": {"id": ("id_", "u64"), "tags": ("tags", "str[]"), "event": ("event", "E")},
    "Outer": {"inner": ("inner", "S:Inner"), "points": ("points", "S:Point[]"), "small": ("small", "E"), "object": ("object_", "S:Inner[]")},
}
MESSAGES = {
    "Empty": {},
    "Ints": {k: (k, t) for k, t in zip("abcdefgh", ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"])},
    "Floats": {"single": ("single", "f32"), "double": ("double", "f64")},
    "Flags": {"first": ("first", "bool"), "second": ("second", "bool")},
    "Texts": {"from": ("from_", "str"), "long": ("long", "str"), "lambda": ("lambda_", "str")},
    "Blobs": {"small": ("small", "bytes"), "large": ("large", "bytes")},
    "Enums": {k: (k, "E") for k in ["small", "wide", "huge", "tiny", "short", "long"]},
    "Arrays": {
        "ints": ("ints", "i64[]"),
        "floats": ("floats", "f64[]"),
        "singles": ("singles", "f32[]"),
        "string": ("string", "str[]"),
        "blobs": ("blobs", "bytes[]"),
        "enums": ("enums", "E[]"),
        "bools": ("bools", "bool[]"),
        "grid": ("grid", "u16[][]"),
        "wide": ("wide", "u8[]"),
    },
    "Structs": {"is": ("is_", "S:Outer"), "many": ("many", "S:Outer[]")},
    "LastId": {"u": ("u", "u32")},
}


def canonical(value, t: str):
    """The canonical JSON value of canonical.ts; floats as their IEEE bits, so comparing these is bitwise."""
    if t.endswith("[]"):
        return [canonical(v, t[:-2]) for v in value]
    if t.startswith("S:"):
        return {spec: canonical(getattr(value, py), ft) for spec, (py, ft) in STRUCTS[t[2:]].items()}
    if t == "f32":
        return struct.pack(">f", value).hex()
    if t == "f64":
        return struct.pack(">d", value).hex()
    if t == "bool":
        assert isinstance(value, bool), value
        return value
    if t == "str":
        return value
    if t == "bytes":
        return value.hex()
    return str(int(value))


def canonical_message(m) -> dict:
    name = type(m).__name__
    return {"type": name, "message": {spec: canonical(getattr(m, py), t) for spec, (py, t) in MESSAGES[name].items()}}


def f32(hex_bits: str) -> float:
    return struct.unpack(">f", bytes.fromhex(hex_bits))[0]


def f64(hex_bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hex_bits))[0]


INF = float("inf")
F32_NAN, F32_TINY, F32_MAX = f32("7fc00000"), f32("00000001"), f32("7f7fffff")
F64_NAN, F64_TINY, F64_MAX = f64("7ff8000000000000"), f64("0000000000000001"), f64("7fefffffffffffff")
EMOJI3 = "\U0001F600\U0001F601\U0001F602"  # 12 bytes: string<12> exactly
LONG = "a\u00e9\u20ac\U0001F600" * 7000  # 1 + 2 + 3 + 4 bytes, 70000 in all
assert len(LONG.encode()) == 70000 and len(EMOJI3.encode()) == 12


def full_inner(n: int) -> object:
    return c.Inner(id_=2**64 - 1 - n, tags=["\U0001F600", "a\u00e9b"], event=c.Tiny.MIN if n else c.Tiny.MAX)


def full_outer(n: int) -> object:
    return c.Outer(
        inner=full_inner(n),
        points=[c.Point(x=F32_NAN, y=-0.0), c.Point(x=-INF, y=F64_MAX), c.Point(x=1.5, y=F64_TINY)],
        small=c.Small.MAX,
        object_=[full_inner(1), c.Inner()],
    )


def instances() -> list:
    m = c
    return [
        m.Empty(), m.Empty(), m.Empty(),
        m.Ints(),
        m.Ints(a=255, b=65535, c=2**32 - 1, d=2**64 - 1, e=127, f=32767, g=2**31 - 1, h=2**63 - 1),
        m.Ints(e=-128, f=-32768, g=-(2**31), h=-(2**63)),
        m.Ints(a=1, b=258, c=0x01020304, d=0x0102030405060708, e=-1, f=-2, g=-3, h=-4),
        m.Floats(),
        m.Floats(single=-0.0, double=-0.0),
        m.Floats(single=INF, double=INF),
        m.Floats(single=-INF, double=-INF),
        m.Floats(single=F32_NAN, double=F64_NAN),
        m.Floats(single=F32_TINY, double=F64_TINY),
        m.Floats(single=F32_MAX, double=F64_MAX),
        m.Floats(single=-F32_MAX, double=-F64_MAX),
        m.Floats(single=0.1, double=0.1),  # 0.1 is rounded to the nearest f32 on encode
        m.Floats(single=-2.25, double=1e-300),
        m.Flags(), m.Flags(first=True, second=True), m.Flags(first=True),
        m.Texts(),
        m.Texts(from_=EMOJI3, long=LONG, lambda_="x"),
        m.Texts(from_="\ufeff\ufffd", long="\u0000", lambda_="\u007f"),
        m.Blobs(),
        m.Blobs(small=b"\x00\xff" * 8, large=bytes(i % 256 for i in range(70000))),
        m.Blobs(small=b"\xff", large=b"\x00"),
        m.Enums(),
        m.Enums(small=m.Small.MAX, wide=m.Wide.MAX, huge=m.Huge.MAX, tiny=m.Tiny.MAX, short=m.Short.MAX, long=m.Long.MAX),
        m.Enums(small=m.Small.ZERO, wide=m.Wide.ONE, huge=m.Huge.ZERO, tiny=m.Tiny.MIN, short=m.Short.MIN, long=m.Long.MIN),
        m.Enums(tiny=m.Tiny.NONE),
        m.Arrays(),
        m.Arrays(
            ints=[-(2**63), 2**63 - 1, 0, -1],
            floats=[F64_NAN, -0.0, -INF],
            singles=[F32_MAX, F32_TINY],
            string=["", "a\u20ac\U0001F600", "12345678"],
            blobs=[b"", b"\x00\xff\x00\xff"],
            enums=[m.Short.MIN, m.Short.MAX],
            bools=[True, False, True],
            grid=[[0, 65535], [1, 2], [3, 65535]],  # u16[2][3]: three of u16[2]
            wide=[i % 256 for i in range(70000)],
        ),
        m.Arrays(grid=[[], [7]], wide=[255], bools=[False], singles=[-0.0]),
        m.Structs(),
        m.Structs(is_=full_outer(0), many=[full_outer(1), full_outer(2)]),
        m.Structs(many=[m.Outer()]),
        m.LastId(), m.LastId(u=2**32 - 1), m.LastId(u=1),
    ]


failed = False


def check(name: str, ok: bool, detail: str = "") -> None:
    global failed
    failed = failed or not ok
    print(json.dumps({"check": name, "ok": bool(ok), "detail": detail}, ensure_ascii=False), flush=True)


def sent(message) -> None:
    print(json.dumps(canonical_message(message), ensure_ascii=False), flush=True)


async def round_trip(port: int) -> None:
    async with c.connect("127.0.0.1", port) as client:
        for message in instances():
            await client.send(message)
            sent(message)
            echo = await asyncio.wait_for(client.receive(), 10)
            if type(echo) is not type(message) or canonical_message(echo) != canonical_message(message):
                check("echo", False, f"sent {canonical_message(message)!r:.300} got {canonical_message(echo)!r:.300}")

        # Refused encodes name the field; nothing of them is sent (the server's log shows).
        for bad, field in [
            (c.Texts(from_=EMOJI3 + "a"), "Texts.from_"),
            (c.Texts(lambda_="\ud800"), "Texts.lambda_"),
            (c.Blobs(small=bytes(17)), "Blobs.small"),
            (c.Arrays(ints=[0] * 5), "Arrays.ints"),
            (c.Arrays(grid=[[1, 2, 3, 4]]), "Arrays.grid[0]"),
            (c.Arrays(wide=[0] * 69999 + [256]), "Arrays.wide[69999]"),
            (c.Ints(a=256), "Ints.a"),
            (c.Ints(h=-(2**63) - 1), "Ints.h"),
            (c.Ints(d=-1), "Ints.d"),
            (c.Enums(wide=7), "Enums.wide"),
            (c.Floats(single=1e39), "Floats.single"),
            (c.Structs(is_=c.Outer(inner=c.Inner(tags=["abcde"]))), "Structs.is_.inner.tags[0]"),
            (c.Structs(many=[c.Outer()] * 3), "Structs.many"),
        ]:
            try:
                await client.send(bad)
                check(f"refused {field}", False, "sent")
            except c.EncodeError as e:
                check(f"refused {e.field}", e.field == field and str(e).startswith(field), str(e))

        # Callbacks take their class's messages; the rest still reach receive().
        got: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on(c.LastId, lambda m: got.done() or got.set_result(m))
        message = c.LastId(u=12345)
        await client.send(message)
        sent(message)
        await client.send(c.Flags(second=True))
        sent(c.Flags(second=True))
        echo = await asyncio.wait_for(got, 10)
        flags = await asyncio.wait_for(client.receive(), 10)
        check("callback", echo == message and flags == c.Flags(second=True), f"{echo} {flags}")

    # The heartbeat, against the server: LastId(u=7) every 0.2 s while idle; each is echoed.
    async with c.connect("127.0.0.1", port, heartbeat=c.LastId(u=7), heartbeat_interval=0.2) as client:
        await asyncio.sleep(0.75)
        client.heartbeat_interval = 0  # stops it
        await asyncio.sleep(0.3)
        beats = 0
        while True:
            try:
                echo = await asyncio.wait_for(client.receive(), 0.5)
            except asyncio.TimeoutError:
                break
            beats += 1
            sent(echo)
        check("heartbeat against the server", 2 <= beats <= 4, f"{beats} heartbeats in 0.75 s at 0.2 s")


async def local_server(script) -> tuple[asyncio.AbstractServer, int, list]:
    """A server that runs script(reader, writer, frames) for each connection; frames collects what arrives."""
    frames: list = []

    async def serve(reader, writer):
        try:
            await script(reader, writer, frames)
        finally:
            writer.close()  # else Python 3.12+ waits for it when the server closes

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], frames


async def read_frames(reader, frames, loop) -> None:
    try:
        while True:
            length, type_id = struct.unpack("<IH", await reader.readexactly(6))
            await reader.readexactly(length - 2)
            frames.append((loop.time(), type_id))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


async def local_checks() -> None:
    loop = asyncio.get_running_loop()

    # Frames that do not decode are raised from receive() and skipped; a bad length ends the connection.
    good = c.encode(c.LastId(u=3))

    async def bad_frames(reader, writer, frames):
        for frame in [
            struct.pack("<IH", 2, 4242),  # unknown type id
            good[:4] + good[4:6] + good[6:9],  # short payload (length fixed below)
            c.encode(c.Flags())[:-1] + b"\x02",  # bool 2
            c.encode(c.Texts(from_="ab"))[:8] + b"\xed\xa0",  # a surrogate in UTF-8
            c.encode(c.Enums())[:-4] + b"\x05\x00\x00\x00",  # 5 is not a Long
            c.encode(c.LastId()) + b"\x00",  # a byte left over
            good,
        ]:
            writer.write(struct.pack("<I", len(frame) - 4) + frame[4:])
        writer.write(struct.pack("<IH", 1, 0))  # a length below 2: nothing after it can be read
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    server, port, _ = await local_server(bad_frames)
    async with server, c.connect("127.0.0.1", port) as client:
        errors = []
        for _ in range(6):
            try:
                await asyncio.wait_for(client.receive(), 5)
            except c.DecodeError as e:
                errors.append(str(e))
        message = await asyncio.wait_for(client.receive(), 5)
        check("undecodable frames raise DecodeError, then the next frame", len(errors) == 6 and message == c.LastId(u=3), json.dumps(errors))
        try:
            await asyncio.wait_for(client.receive(), 5)
            check("bad length", False, "no error")
        except c.DecodeError as e:
            try:
                await asyncio.wait_for(client.receive(), 5)
                check("bad length", False, "not closed")
            except c.ConnectionClosed as closed:
                check("bad length closes the connection", True, f"{e}; {closed}")
        try:
            await client.send(c.Empty())
            check("send after close raises ConnectionClosed", False)
        except c.ConnectionClosed as e:
            check("send after close raises ConnectionClosed", True, str(e))

    # The heartbeat goes only when nothing else was sent for a whole interval.
    server, port, frames = await local_server(lambda r, w, frames: read_frames(r, frames, loop))
    async with server, c.connect("127.0.0.1", port, heartbeat=c.LastId(u=9), heartbeat_interval=0.2) as client:
        start = loop.time()
        while loop.time() - start < 0.6:
            await client.send(c.Empty())
            await asyncio.sleep(0.05)
        busy = [t for t, type_id in frames if type_id == c.LastId.TYPE_ID]
        await asyncio.sleep(0.5)
        idle = [t for t, type_id in frames if type_id == c.LastId.TYPE_ID]
        check("heartbeat only when idle", busy == [] and 1 <= len(idle) <= 3, f"busy {len(busy)}, idle {len(idle)}")

    # async for ends when the server closes between frames.
    async def two_then_close(reader, writer, frames):
        writer.write(c.encode(c.LastId(u=1)) + c.encode(c.Empty()))
        await writer.drain()
        writer.close()

    server, port, _ = await local_server(two_then_close)
    async with server, c.connect("127.0.0.1", port) as client:
        received = [m async for m in client]
        check("async for ends at a clean close", received == [c.LastId(u=1), c.Empty()], str(received))

    # Reconnect: the server drops the first connection; the client comes back and sends again.
    connections = []

    async def drop_first(reader, writer, frames):
        connections.append(writer)
        if len(connections) == 1:
            writer.close()
            return
        await read_frames(reader, frames, loop)

    server, port, frames = await local_server(drop_first)
    async with server, c.connect("127.0.0.1", port, reconnect=True, reconnect_delay=0.05) as client:
        reconnected = asyncio.Event()
        client.on_reconnect(reconnected.set)
        await asyncio.wait_for(reconnected.wait(), 5)
        await client.send(c.LastId(u=2))
        await asyncio.sleep(0.2)
        check("reconnects", len(connections) == 2 and [t for _, t in frames] == [c.LastId.TYPE_ID], f"{len(connections)} connections")

    # A refused connect.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    try:
        await c.connect("127.0.0.1", free)
        check("connect refused: ConnectError", False)
    except c.ConnectError as e:
        check("connect refused: ConnectError", str(free) in str(e), str(e))

    # The codec: little-endian, strict, bounded.
    frame = c.encode(c.Ints(b=0x0102, c=0x03040506))
    check("codec encodes little-endian", frame[:13].hex() == "20000000" "0100" "00" "0201" "06050403", frame.hex())
    for name, payload, type_id in [
        ("truncated", c.encode(c.Ints())[6:-1], c.Ints.TYPE_ID),
        ("overlong", b"\x02\x00\xc0\xaf" + b"\x00\x00" * 2, c.Texts.TYPE_ID),
        ("over bound", b"\x0d\x00" + b"a" * 13 + b"\x00\x00" * 2, c.Texts.TYPE_ID),
    ]:
        try:
            c.decode_payload(type_id, payload)
            check(f"codec {name}", False)
        except c.DecodeError as e:
            check(f"codec {name}", e.type_id == type_id, str(e))


async def main() -> None:
    await round_trip(int(sys.argv[2]))
    await local_checks()


asyncio.run(main())
sys.exit(1 if failed else 0)
