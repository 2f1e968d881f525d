using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// A copy of the network that runs each batch's forward and backward passes in another arithmetic or memory
/// layout than the float32 network being trained, which keeps the weights the optimizer updates and everything
/// that reads them (weight average, checkpoints, validation, the package).
/// <para>bfloat16 (mixed precision without autocast, which TorchSharp 0.107 does not expose): updating bfloat16
/// weights directly would round away most steps (8 bits of mantissa against lr × gradient). The copy's batch
/// norms stay float32: libtorch's CPU batch norm takes bfloat16 input with float32 parameters and statistics, so
/// the running statistics are not rounded every step.</para>
/// <para>Channels-last: the copy's convolution weights are laid out NHWC, which oneDNN's kernels run faster
/// (docs/BENCHMARKS.md, "Training throughput by memory layout"); the master stays NCHW, so nothing that saves
/// or exports it meets an unusual layout.</para>
/// </summary>
public sealed class PassCopy : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _copy;
    private readonly (Tensor Master, Tensor Copy)[] _parameters;
    private readonly (Tensor Master, Tensor Copy)[] _buffers;
    private readonly bool _bfloat16;
    private readonly bool _channelsLast;

    /// <param name="master">The float32 network being trained.</param>
    /// <param name="copy">A fresh network of the same architecture; this object owns and converts it.</param>
    /// <param name="precision">Arithmetic of the copy's passes.</param>
    /// <param name="memoryFormat">Layout of the copy's convolution weights and inputs.</param>
    public PassCopy(nn.Module<Tensor, Tensor> master, nn.Module<Tensor, Tensor> copy, TrainingPrecision precision, TrainingMemoryFormat memoryFormat = TrainingMemoryFormat.Contiguous)
    {
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(copy);
        _copy = copy;
        _bfloat16 = precision == TrainingPrecision.BFloat16;
        _channelsLast = memoryFormat == TrainingMemoryFormat.ChannelsLast;
        if (_bfloat16)
        {
            _copy.to(ScalarType.BFloat16);
            foreach (var module in _copy.modules())
            {
                if (module is TorchSharp.Modules.BatchNorm1d or TorchSharp.Modules.BatchNorm2d) module.to(ScalarType.Float32);
            }
        }
        if (_channelsLast) MemoryLayout.ToChannelsLast(_copy);
        _copy.train();
        _parameters = Pair(master.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), _copy.named_parameters().Select(p => (p.name, (Tensor)p.parameter)));
        _buffers = Pair(master.named_buffers(), _copy.named_buffers());
    }

    /// <summary>Whether <paramref name="options"/> train through a copy at all (float32 NCHW passes run on the master itself).</summary>
    public static bool IsNeeded(TrainOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Precision != TrainingPrecision.Float32 || options.MemoryFormat != TrainingMemoryFormat.Contiguous;
    }

    /// <summary>The copy, for binding its dropout layers to the run's generator.</summary>
    public nn.Module Network => _copy;

    /// <summary>Loads the master's current weights and statistics into the copy and clears its gradients.</summary>
    public void Pull()
    {
        using var _ = no_grad();
        // copy_ keeps the destination's dtype and layout.
        foreach (var (master, copy) in _parameters) copy.copy_(master);
        foreach (var (master, copy) in _buffers) copy.copy_(master);
        _copy.zero_grad();
    }

    /// <summary>The copy's logits for a float32 batch, as float32 (the loss is computed in float32).</summary>
    public Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = NewDisposeScope();
        var converted = _bfloat16 ? input.to(ScalarType.BFloat16) : input.alias();
        if (_channelsLast) converted = MemoryLayout.ChannelsLast(converted);
        return _copy.forward(converted).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>After the backward pass: the copy's gradients, as float32 NCHW, and its updated batch statistics into the master.</summary>
    public void Push()
    {
        using var _ = no_grad();
        foreach (var (master, copy) in _parameters)
        {
            using var gradient = copy.grad;
            if (gradient is null) continue;
            using var masterGradient = master.grad;
            if (masterGradient is null)
            {
                // contiguous: the optimizer's state is made in the gradient's layout and is saved in checkpoints.
                using var converted = gradient.to(ScalarType.Float32);
                using var dense = converted.contiguous();
                master.grad = dense;
            }
            else
            {
                masterGradient.copy_(gradient);
            }
        }
        foreach (var (master, copy) in _buffers) master.copy_(copy);
    }

    public void Dispose() => _copy.Dispose();

    /// <summary>
    /// Whether the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX), from the Linux CPU flags;
    /// null where they cannot be read. Without it libtorch emulates bfloat16 and the passes get slower.
    /// </summary>
    public static bool? CpuHasNativeBFloat16(string cpuInfoPath = "/proc/cpuinfo")
    {
        try
        {
            var flags = File.ReadLines(cpuInfoPath).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
            return flags?.Split(' ', ':', '\t').Any(f => f is "avx512_bf16" or "amx_bf16");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static (Tensor Master, Tensor Copy)[] Pair(IEnumerable<(string Name, Tensor Tensor)> master, IEnumerable<(string Name, Tensor Tensor)> copy)
    {
        var copies = copy.ToDictionary(p => p.Name, p => p.Tensor);
        var pairs = master.Select(p => (p.Tensor, copies.TryGetValue(p.Name, out var c) ? c
            : throw new ArgumentException($"the copy has no tensor '{p.Name}': it is not the master's architecture"))).ToArray();
        return pairs.Length == copies.Count ? pairs
            : throw new ArgumentException($"the copy has {copies.Count} tensors, the master {pairs.Length}: it is not the master's architecture");
    }
}
