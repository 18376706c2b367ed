using Microsoft.Win32.SafeHandles;

namespace Balancer.Hosting;

/// <summary>
/// A few descriptors held open (on <c>/dev/null</c>) so that the process can still act when it reaches its
/// open-file limit: a listener that cannot accept gives one back, accepts the waiting client and answers
/// it, instead of leaving it unanswered in the kernel's queue (the classic spare-descriptor trick of event
/// loops such as libev's).
/// </summary>
internal sealed class DescriptorReserve : IDisposable
{
    public const int Size = 16;

    private readonly Stack<SafeFileHandle> _spares = new();
    private readonly Lock _gate = new();
    private int _count;

    public DescriptorReserve() => Refill();

    public int Available => Volatile.Read(ref _count);

    /// <summary>Closes one spare descriptor so that the caller can open a socket in its place.</summary>
    public bool TryRelease()
    {
        lock (_gate)
        {
            if (!_spares.TryPop(out var spare))
            {
                return false;
            }

            spare.Dispose();
            _count = _spares.Count;
            return true;
        }
    }

    /// <summary>Opens spares again up to <see cref="Size"/>, as far as the limit allows now.</summary>
    public void Refill()
    {
        // Checked on every accept: nothing to do is the usual case.
        if (!OperatingSystem.IsLinux() || Available >= Size)
        {
            return;
        }

        lock (_gate)
        {
            while (_spares.Count < Size)
            {
                try
                {
                    _spares.Push(File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read));
                }
                catch (IOException)
                {
                    break;
                }
            }

            _count = _spares.Count;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            while (_spares.TryPop(out var spare))
            {
                spare.Dispose();
            }

            _count = 0;
        }
    }
}

/// <summary>Set on a connection accepted with a descriptor taken from the <see cref="DescriptorReserve"/>.</summary>
internal sealed class AcceptedOnSpareDescriptor
{
    public static readonly AcceptedOnSpareDescriptor Instance = new();
}
