// The C# client's round trip (test/client-csharp.test.ts), compiled by mcs with the client
// generated from test/fixtures/specs/clients.yaml. Usage: mono roundtrip.exe <port>.
//
// It sends edge values of every message to the round-trip server, half through the synchronous
// API and half through the async one, checks that each echo is what it sent (floats bit for bit),
// and prints the canonical JSON of each message sent, one a line (test/support/canonical.ts).
// Lines of the form {"check": ...} report the other checks: refused encodes, a frame that does
// not decode, the heartbeat, the handlers. Any failed check exits 1.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

using Clients;

static class RoundTrip
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    static StreamWriter output;
    static readonly List<string> failures = new List<string>();

    static int Main(string[] args)
    {
        Console.OutputEncoding = new UTF8Encoding(false);
        output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
        output.NewLine = "\n";
        try
        {
            Run(int.Parse(args[0], CultureInfo.InvariantCulture)).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            failures.Add("unexpected " + e);
        }
        output.Flush();
        foreach (var f in failures) Console.Error.WriteLine("FAILED: " + f);
        return failures.Count == 0 ? 0 : 1;
    }

    static async Task Run(int port)
    {
        var messages = Samples();
        var client = new ClientsClient();
        var typed = 0;
        var received = 0;
        client.On<Ints>(m => typed++);
        client.Received += m => received++;
        client.Connect("127.0.0.1", port);

        // Half through each API, alternating, so both see every message type.
        for (var i = 0; i < messages.Count; i++)
        {
            var sent = messages[i];
            IMessage echo;
            if (i % 2 == 0)
            {
                client.Send(sent);
                echo = client.Receive(Wait);
            }
            else
            {
                await client.SendAsync(sent);
                using (var limit = new CancellationTokenSource(Wait)) echo = await client.ReceiveAsync(limit.Token);
            }
            var line = Canonical(sent);
            output.WriteLine(line);
            if (echo == null || echo.GetType() != sent.GetType() || Canonical(echo) != line) failures.Add("echo of message " + i + " differs:\n  sent " + Shorten(line) + "\n  got  " + (echo == null ? "nothing" : Shorten(Canonical(echo))));
        }
        var intsSent = messages.Count(m => m is Ints);
        Check("handlers", typed == intsSent && received == messages.Count, "On<Ints> saw " + typed + " of " + intsSent + ", Received " + received + " of " + messages.Count);

        await Refusals(client);
        await Waiting(client);
        await Heartbeat(client);
        client.Dispose();

        await Undecodable();
        CodecDecode();
    }

    // ---------------------------------------------------------------------------------------
    // Encode refusals: each throws EncodeException naming the field, and sends nothing, which
    // the marker's echo shows (and the server's log, which holds only what was sent).

    static async Task Refusals(ClientsClient client)
    {
        var emoji = "\U0001F600";
        await Refuse(client, "Texts.From", new Texts { From = emoji + emoji + emoji + "a" }, false);
        await Refuse(client, "Texts.From", new Texts { From = null }, true);
        await Refuse(client, "Texts.Lambda", new Texts { Lambda = "\ud800" }, false);
        await Refuse(client, "Blobs.Small", new Blobs { Small = new byte[17] }, true);
        await Refuse(client, "Arrays.Ints", new Arrays { Ints = new long[5] }, false);
        await Refuse(client, "Arrays.Grid[]", new Arrays { Grid = new[] { new ushort[3] } }, true);
        await Refuse(client, "Arrays.String[]", new Arrays { String = new string[] { null } }, false);
        await Refuse(client, "Enums.Wide", new Enums { Wide = (Wide)0 }, true);
        await Refuse(client, "Structs.Is", new Structs { Is = null }, false);
        var deep = new Structs();
        deep.Is.Inner.Tags = new[] { "abcde" };
        await Refuse(client, "Inner.Tags[]", deep, true);
        var marker = new LastId { U = 424242 };
        client.Send(marker);
        output.WriteLine(Canonical(marker));
        var echo = client.Receive(Wait);
        Check("nothing sent by refusals", echo is LastId && ((LastId)echo).U == 424242, "the first echo after the refusals is " + (echo == null ? "nothing" : Canonical(echo)));
    }

    static async Task Refuse(ClientsClient client, string field, IMessage message, bool async)
    {
        try
        {
            if (async) await client.SendAsync(message);
            else client.Send(message);
            failures.Add("sending with a bad " + field + " was not refused");
        }
        catch (EncodeException e)
        {
            Check("refused " + field, e.Field == field && e.Message.Contains(field) && e.MessageName == message.GetType().Name, e.Message);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Waiting: a timeout and a cancellation keep what was received, so the next receive of
    // either kind gets the message; TryReceive does not wait.

    static async Task Waiting(ClientsClient client)
    {
        var timedOut = false;
        try
        {
            client.Receive(TimeSpan.FromMilliseconds(100));
        }
        catch (TimeoutException)
        {
            timedOut = true;
        }
        Check("receive times out", timedOut, "Receive returned with nothing sent");

        var cancelled = false;
        try
        {
            using (var limit = new CancellationTokenSource(100)) await client.ReceiveAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            cancelled = true;
        }
        Check("receive is cancelled", cancelled, "ReceiveAsync returned with nothing sent");

        // The cancelled receive's read is still pending: the sync receive takes it over.
        var first = new LastId { U = 1 };
        await client.SendAsync(first);
        output.WriteLine(Canonical(first));
        var echo = client.Receive(Wait) as LastId;
        Check("sync receive after a cancelled one", echo != null && echo.U == 1, echo == null ? "no LastId" : "LastId " + echo.U);

        IMessage none;
        Check("TryReceive without a message", !client.TryReceive(out none), "got " + (none == null ? "null" : Canonical(none)));
        var second = new LastId { U = 2 };
        client.Send(second);
        output.WriteLine(Canonical(second));
        IMessage polled = null;
        var polls = 0;
        while (!client.TryReceive(out polled) && polls++ < 200) await Task.Delay(10);
        Check("TryReceive", polled is LastId && ((LastId)polled).U == 2, polled == null ? "nothing after " + polls + " polls" : Canonical(polled));
    }

    // ---------------------------------------------------------------------------------------
    // The heartbeat: an Empty every 200 ms while nothing else is sent. The server echoes each.

    static async Task Heartbeat(ClientsClient client)
    {
        client.HeartbeatMessage = new Empty();
        client.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        await Task.Delay(900);
        client.HeartbeatInterval = TimeSpan.Zero;
        await Task.Delay(300);
        var beats = 0;
        while (true)
        {
            IMessage m;
            try
            {
                m = client.Receive(TimeSpan.FromSeconds(1));
            }
            catch (TimeoutException)
            {
                break;
            }
            if (!(m is Empty)) failures.Add("while idle, received " + Canonical(m));
            output.WriteLine(Canonical(new Empty()));
            beats++;
        }
        // 900 ms at one every 150 ms of idleness (three quarters of the interval): about six.
        Check("heartbeat", beats >= 2 && beats <= 10, beats + " heartbeats");
    }

    // ---------------------------------------------------------------------------------------
    // Frames that do not decode, from a server of our own: each is reported as a DecodeException
    // and skipped; a good frame after them still arrives; a bad length closes the connection.

    static async Task Undecodable()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var client = new ClientsClient();
        var cancelled = false;
        try
        {
            await client.ConnectAsync("127.0.0.1", port, new CancellationToken(true));
        }
        catch (OperationCanceledException)
        {
            cancelled = true;
        }
        Check("connect is cancelled", cancelled && !client.IsConnected, "cancelled " + cancelled + ", IsConnected " + client.IsConnected);
        var connecting = client.ConnectAsync("127.0.0.1", port);
        using (var peer = await listener.AcceptTcpClientAsync())
        {
            await connecting;
            var s = peer.GetStream();
            Frame(s, 1, new byte[] { 1, 2, 0, 3, 0, 0, 0 });            // Ints cut short
            Frame(s, 4, new byte[] { 2, 0, 0xc0, 0x80, 0, 0, 0, 0, 0, 0 }); // Texts.From: an overlong NUL
            Frame(s, 3, new byte[] { 2, 0 });                           // Flags.First: 2
            Frame(s, 6, new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }); // Enums.Wide: 0
            Frame(s, 9, new byte[0]);                                   // no message has id 9
            Frame(s, 65535, new byte[] { 7, 0, 0, 0, 1 });              // LastId and a byte over
            Frame(s, 65535, new byte[] { 7, 0, 0, 0 });                 // LastId, good
            s.Write(new byte[] { 1, 0, 0, 0, 0 }, 0, 5);                // a length of 1
            await Undecodable(client, false, "Ints", null, "ends early");
            await Undecodable(client, true, "Texts", "Texts.From", "not valid UTF-8");
            await Undecodable(client, false, "Flags", "Flags.First", "not a bool");
            await Undecodable(client, true, "Enums", "Enums.Wide", "not a value of Wide");
            await Undecodable(client, false, null, null, "type id 9");
            await Undecodable(client, true, "LastId", null, "left over");
            var good = client.Receive(Wait) as LastId;
            Check("good frame after bad ones", good != null && good.U == 7, good == null ? "no LastId" : "LastId " + good.U);
            await Undecodable(client, false, null, null, "frame length of 1");
            Check("closed after a bad length", !client.IsConnected, "IsConnected " + client.IsConnected);
        }
        listener.Stop();
        client.Dispose();
    }

    static async Task Undecodable(ClientsClient client, bool async, string message, string field, string reason)
    {
        try
        {
            if (async)
            {
                using (var limit = new CancellationTokenSource(Wait)) await client.ReceiveAsync(limit.Token);
            }
            else client.Receive(Wait);
            failures.Add("a frame with " + reason + " decoded");
        }
        catch (DecodeException e)
        {
            Check("undecodable " + (message ?? "frame") + ": " + reason, e.MessageName == message && e.Field == field && e.Message.Contains(reason), e.Message);
        }
    }

    static void Frame(Stream s, ushort typeId, byte[] payload)
    {
        var frame = new byte[6 + payload.Length];
        var length = payload.Length + 2;
        frame[0] = (byte)length;
        frame[1] = (byte)(length >> 8);
        frame[4] = (byte)typeId;
        frame[5] = (byte)(typeId >> 8);
        Buffer.BlockCopy(payload, 0, frame, 6, payload.Length);
        s.Write(frame, 0, frame.Length);
    }

    // The codec on its own: a truncated payload, and a whole frame decoded back.
    static void CodecDecode()
    {
        var frame = ClientsCodec.Encode(new LastId { U = 0x01020304 });
        Check("codec encodes little-endian", BitConverter.ToString(frame) == "06-00-00-00-FF-FF-04-03-02-01", BitConverter.ToString(frame));
        try
        {
            ClientsCodec.Decode(LastId.TypeId, frame, 6, 3);
            failures.Add("a truncated LastId decoded");
        }
        catch (DecodeException e)
        {
            Check("codec truncated", e.MessageName == "LastId" && e.Message.Contains("ends early"), e.Message);
        }
        var back = ClientsCodec.Decode(LastId.TypeId, frame, 6, 4) as LastId;
        Check("codec decodes", back != null && back.U == 0x01020304, back == null ? "null" : back.U.ToString());
    }

    static void Check(string name, bool ok, string detail)
    {
        output.WriteLine("{\"check\":" + Str(name) + ",\"ok\":" + (ok ? "true" : "false") + ",\"detail\":" + Str(detail) + "}");
        if (!ok) failures.Add(name + ": " + detail);
    }

    static string Shorten(string s)
    {
        return s.Length > 300 ? s.Substring(0, 300) + "..." : s;
    }

    // ---------------------------------------------------------------------------------------
    // The samples: every message, at its edges.

    static float F32(uint bits) { return BitConverter.ToSingle(BitConverter.GetBytes(bits), 0); }
    static double F64(ulong bits) { return BitConverter.Int64BitsToDouble((long)bits); }

    static byte[] Pattern(int length, int step)
    {
        var b = new byte[length];
        for (var i = 0; i < length; i++) b[i] = (byte)(i * step);
        return b;
    }

    static List<IMessage> Samples()
    {
        var emoji = "\U0001F600";
        // 10 bytes of UTF-8 a unit, one character of each length: 7000 units fill string<70000>.
        var mixed = new StringBuilder();
        for (var i = 0; i < 7000; i++) mixed.Append("a\u00e9\u20ac\U0001F680");
        var list = new List<IMessage>();

        list.Add(new Empty());
        list.Add(new Empty());
        list.Add(new Empty());

        list.Add(new Ints());
        list.Add(new Ints { A = byte.MaxValue, B = ushort.MaxValue, C = uint.MaxValue, D = ulong.MaxValue, E = sbyte.MaxValue, F = short.MaxValue, G = int.MaxValue, H = long.MaxValue });
        list.Add(new Ints { E = sbyte.MinValue, F = short.MinValue, G = int.MinValue, H = long.MinValue });
        list.Add(new Ints { A = 1, B = 0x1234, C = 0x12345678, D = 0x0102030405060708, E = -1, F = -2, G = -3, H = -4 });

        // Bits: zero, -0, +inf, -inf, quiet NaN, smallest subnormal, largest finite, exact values,
        // smallest normal, a negative quiet NaN, quiet NaNs with payloads.
        uint[] singles = { 0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 1, 0x7f7fffff, 0x3fc00000, 0x00800000, 0xffc00000, 0x7fc12345 };
        ulong[] doubles = { 0, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 1, 0x7fefffffffffffff, 0xc000000000000001, 0x0010000000000000, 0xfff8000000000000, 0x7ff8000000012345 };
        for (var i = 0; i < singles.Length; i++) list.Add(new Floats { Single = F32(singles[i]), Double = F64(doubles[i]) });

        list.Add(new Flags());
        list.Add(new Flags { First = true });
        list.Add(new Flags { Second = true });
        list.Add(new Flags { First = true, Second = true });

        list.Add(new Texts());
        list.Add(new Texts { From = emoji + emoji + emoji, Long = mixed.ToString(), Lambda = "z" });
        list.Add(new Texts { From = "\"\\\n\t\u0001\u00e9/", Long = new string('x', 65536), Lambda = "\"" });
        list.Add(new Texts { From = "\ufeff\ufffd", Long = "\u0000\u001f\u007f\u0080\u07ff\u0800\uffff\U00010000\U0010FFFF", Lambda = "\u007f" });

        list.Add(new Blobs());
        list.Add(new Blobs { Small = new byte[] { 0, 255, 1, 254, 127, 128, 0, 0, 255, 255, 16, 32, 64, 8, 4, 2 }, Large = Pattern(70000, 7) });
        list.Add(new Blobs { Small = new byte[] { 0 }, Large = new byte[] { 255 } });

        list.Add(new Enums { Small = Small.Zero, Wide = Wide.One, Huge = Huge.Zero, Tiny = Tiny.Min, Short = Short.Min, Long = Long.Min });
        list.Add(new Enums { Small = Small.Max, Wide = Wide.Max, Huge = Huge.Max, Tiny = Tiny.Max, Short = Short.Max, Long = Long.Max });
        list.Add(new Enums { Small = Small.Max, Wide = Wide.One, Huge = Huge.Max, Tiny = Tiny.None, Short = Short.Max, Long = Long.Min });

        list.Add(new Arrays());
        list.Add(new Arrays
        {
            Ints = new[] { long.MinValue, -1, 0, long.MaxValue },
            Floats = new[] { F64(0x7ff8000000000000), F64(0x8000000000000000), F64(1) },
            Singles = new[] { F32(0x7f800000), F32(0x3fc00000) },
            String = new[] { "", "12345678", emoji + emoji },
            Blobs = new[] { new byte[0], new byte[] { 0, 255, 1, 254 } },
            Enums = new[] { Short.Min, Short.Max },
            Bools = new[] { true, false, true },
            Grid = new[] { new ushort[] { 0, 65535 }, new ushort[] { 256, 1 }, new ushort[] { 65534, 2 } },
            Wide = Pattern(70000, 13),
        });
        list.Add(new Arrays
        {
            Ints = new[] { 1L },
            Floats = new[] { double.NegativeInfinity },
            Singles = new[] { F32(1) },
            String = new[] { "\u00e9" },
            Blobs = new[] { new byte[] { 255 } },
            Enums = new[] { Short.Max },
            Bools = new[] { false },
            Grid = new[] { new ushort[0], new ushort[] { 513 } },
            Wide = new byte[] { 0, 255 },
        });

        list.Add(new Structs());
        list.Add(new Structs { Is = FullOuter(1), Many = new[] { FullOuter(2), FullOuter(3) } });
        list.Add(new Structs { Is = new Outer { Inner = new Inner { Id = 1, Tags = new[] { "" }, Event = Tiny.Max }, Points = new[] { new Point { X = -0.0f, Y = double.Epsilon } }, Small = Small.Max }, Many = new[] { new Outer() } });

        list.Add(new LastId());
        list.Add(new LastId { U = uint.MaxValue });
        list.Add(new LastId { U = 0x01020304 });
        return list;
    }

    static Outer FullOuter(int seed)
    {
        Func<ulong, Inner> inner = id => new Inner { Id = id, Tags = new[] { "\U0001F600", "abcd" }, Event = Tiny.Min };
        return new Outer
        {
            Inner = inner(ulong.MaxValue - (ulong)seed),
            Points = new[] { new Point { X = float.MaxValue, Y = double.MinValue }, new Point { X = F32(0x7fc00000), Y = F64(0x7ff8000000000000) }, new Point { X = seed, Y = -seed } },
            Small = Small.Max,
            Object = new[] { inner((ulong)seed), inner(0) },
        };
    }

    // ---------------------------------------------------------------------------------------
    // Canonical JSON (test/support/canonical.ts): integers and enums as decimal strings, floats
    // as the hex of their bits, bytes as hex, objects keyed by the spec's field names.

    static string Canonical(IMessage m)
    {
        return "{\"type\":" + Str(m.GetType().Name) + ",\"message\":" + Fields(m) + "}";
    }

    static string Fields(IMessage message)
    {
        switch (message.TypeId)
        {
            case Empty.TypeId:
                return "{}";
            case Ints.TypeId:
            {
                var m = (Ints)message;
                return Obj("a", Int(m.A), "b", Int(m.B), "c", Int(m.C), "d", Int(m.D), "e", Int(m.E), "f", Int(m.F), "g", Int(m.G), "h", Int(m.H));
            }
            case Floats.TypeId:
            {
                var m = (Floats)message;
                return Obj("single", Bits(m.Single), "double", Bits(m.Double));
            }
            case Flags.TypeId:
            {
                var m = (Flags)message;
                return Obj("first", Bool(m.First), "second", Bool(m.Second));
            }
            case Texts.TypeId:
            {
                var m = (Texts)message;
                return Obj("from", Str(m.From), "long", Str(m.Long), "lambda", Str(m.Lambda));
            }
            case Blobs.TypeId:
            {
                var m = (Blobs)message;
                return Obj("small", Hex(m.Small), "large", Hex(m.Large));
            }
            case Enums.TypeId:
            {
                var m = (Enums)message;
                return Obj("small", Int((long)m.Small), "wide", Int((long)m.Wide), "huge", Int((long)m.Huge), "tiny", Int((long)m.Tiny), "short", Int((long)m.Short), "long", Int((long)m.Long));
            }
            case Arrays.TypeId:
            {
                var m = (Arrays)message;
                return Obj(
                    "ints", Arr(m.Ints, v => Int(v)),
                    "floats", Arr(m.Floats, Bits),
                    "singles", Arr(m.Singles, Bits),
                    "string", Arr(m.String, Str),
                    "blobs", Arr(m.Blobs, Hex),
                    "enums", Arr(m.Enums, v => Int((long)v)),
                    "bools", Arr(m.Bools, Bool),
                    "grid", Arr(m.Grid, row => Arr(row, v => Int(v))),
                    "wide", Arr(m.Wide, v => Int(v)));
            }
            case Structs.TypeId:
            {
                var m = (Structs)message;
                return Obj("is", OuterJson(m.Is), "many", Arr(m.Many, OuterJson));
            }
            case LastId.TypeId:
                return Obj("u", Int(((LastId)message).U));
            default:
                throw new ArgumentException("no canonical form for " + message.GetType().Name);
        }
    }

    static string OuterJson(Outer o)
    {
        return Obj("inner", InnerJson(o.Inner), "points", Arr(o.Points, p => Obj("x", Bits(p.X), "y", Bits(p.Y))), "small", Int((long)o.Small), "object", Arr(o.Object, InnerJson));
    }

    static string InnerJson(Inner i)
    {
        return Obj("id", Int(i.Id), "tags", Arr(i.Tags, Str), "event", Int((long)i.Event));
    }

    static string Obj(params string[] pairs)
    {
        var sb = new StringBuilder("{");
        for (var i = 0; i < pairs.Length; i += 2) sb.Append(i == 0 ? "" : ",").Append(Str(pairs[i])).Append(':').Append(pairs[i + 1]);
        return sb.Append('}').ToString();
    }

    static string Arr<T>(T[] items, Func<T, string> item)
    {
        return "[" + string.Join(",", items.Select(item)) + "]";
    }

    static string Int(long v) { return "\"" + v.ToString(CultureInfo.InvariantCulture) + "\""; }
    static string Int(ulong v) { return "\"" + v.ToString(CultureInfo.InvariantCulture) + "\""; }
    static string Bool(bool v) { return v ? "true" : "false"; }
    static string Bits(float v) { return "\"" + BitConverter.ToUInt32(BitConverter.GetBytes(v), 0).ToString("x8") + "\""; }
    static string Bits(double v) { return "\"" + ((ulong)BitConverter.DoubleToInt64Bits(v)).ToString("x16") + "\""; }

    static string Hex(byte[] bytes)
    {
        var sb = new StringBuilder("\"", bytes.Length * 2 + 2);
        foreach (var b in bytes) sb.Append(b.ToString("x2"));
        return sb.Append('"').ToString();
    }

    // JSON string: quote, backslash and control characters escaped; the rest as it is (UTF-8 out).
    static string Str(string s)
    {
        var sb = new StringBuilder("\"", s.Length + 2);
        foreach (var ch in s)
        {
            if (ch == '"') sb.Append("\\\"");
            else if (ch == '\\') sb.Append("\\\\");
            else if (ch < 0x20) sb.Append("\\u").Append(((int)ch).ToString("x4"));
            else sb.Append(ch);
        }
        return sb.Append('"').ToString();
    }
}
