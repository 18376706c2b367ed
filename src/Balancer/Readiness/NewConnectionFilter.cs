using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Balancer.Readiness;

/// <summary>
/// Makes a listening socket ignore new connection attempts without refusing them: a classic BPF socket
/// filter that drops every segment with SYN set and ACK clear. The kernel discards such a SYN silently (a
/// closed listener would answer with a reset, which the client reports as an error at once), so the client
/// sends it again after its retransmission timeout, by then to whichever host holds the address. Handshakes
/// already under way complete, and accepted connections are untouched.
/// </summary>
internal static class NewConnectionFilter
{
    // Linux <asm-generic/socket.h>: SOL_SOCKET, SO_ATTACH_FILTER, SO_DETACH_FILTER.
    private const int SolSocket = 1;
    private const int SoAttachFilter = 26;
    private const int SoDetachFilter = 27;

    // The program, as (code, jt, jf, k): the filter sees the segment from its TCP header on.
    //   ldb [13]            the flags byte
    //   and #0x12           SYN | ACK
    //   jeq #0x02, 0, 1     SYN alone?
    //   ret #0              drop
    //   ret #0xffffffff     keep all of it
    private static readonly (ushort Code, byte Jt, byte Jf, uint K)[] Program =
    [
        (0x30, 0, 0, 13),
        (0x54, 0, 0, 0x12),
        (0x15, 0, 1, 0x02),
        (0x06, 0, 0, 0),
        (0x06, 0, 0, uint.MaxValue),
    ];

    /// <summary>From now on, <paramref name="listener"/> lets new connection attempts time out and retry.</summary>
    public static void Close(Socket listener)
    {
        var instructions = new byte[Program.Length * 8];
        for (var i = 0; i < Program.Length; i++)
        {
            var span = instructions.AsSpan(i * 8, 8);
            BinaryPrimitives.WriteUInt16LittleEndian(span, Program[i].Code);
            span[2] = Program[i].Jt;
            span[3] = Program[i].Jf;
            BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Program[i].K);
        }

        // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the kernel copies the program
        // during the call, so it only has to stay in place until then.
        var pinned = GCHandle.Alloc(instructions, GCHandleType.Pinned);
        try
        {
            var program = new byte[2 * IntPtr.Size];
            BinaryPrimitives.WriteUInt16LittleEndian(program, (ushort)Program.Length);
            if (IntPtr.Size == 8)
            {
                BinaryPrimitives.WriteInt64LittleEndian(program.AsSpan(8), pinned.AddrOfPinnedObject().ToInt64());
            }
            else
            {
                BinaryPrimitives.WriteInt32LittleEndian(program.AsSpan(4), pinned.AddrOfPinnedObject().ToInt32());
            }

            listener.SetRawSocketOption(SolSocket, SoAttachFilter, program);
        }
        finally
        {
            pinned.Free();
        }
    }

    /// <summary>Takes new connections again.</summary>
    public static void Open(Socket listener)
    {
        try
        {
            listener.SetRawSocketOption(SolSocket, SoDetachFilter, new byte[4]);
        }
        catch (SocketException)
        {
            // None was attached (ENOENT): it takes new connections already.
        }
    }
}
