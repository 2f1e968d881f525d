using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// Tensor arithmetic with a number that owns the number's native scalar until libtorch has returned.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 turns a number (and the implicit <c>alpha = 1</c> of <c>a.add(b)</c> or <c>a + b</c>) into a
/// finalizable <see cref="Scalar"/>, reads its native handle and drops the object before the native call. When
/// another thread's allocation starts a garbage collection during that call, the finalizer can free the scalar
/// while libtorch still reads it: the call throws ("Expected false to be true") or computes with a wrong value.
/// <c>bench/run --only scalar-race</c> measures it: about 1 call in 10^4 under allocation pressure, none with
/// held scalars. These helpers dispose their scalar after the call, which also keeps it off the finalizer queue.
/// They cover the inference path. TorchSharp's own code (optimizer steps, batch norm's training counter) and
/// our training-only code (augmentation, losses, EMA) still use temporaries; there the launchers'
/// <c>DOTNET_JITMinOpts=1</c> keeps them alive (docs/decisions/0003-torchsharp-scalar-lifetime.md).
/// </remarks>
public static class HeldScalars
{
    /// <summary>
    /// Whether this process runs with <c>DOTNET_JITMinOpts=1</c> (or the older <c>COMPlus_</c> name), the setting
    /// that keeps TorchSharp's own temporary scalars alive through their native calls. It is read once at
    /// start-up by the runtime, so setting it from inside the process is too late; a trainer warns instead.
    /// </summary>
    public static bool RuntimeKeepsTemporariesAlive() => RuntimeKeepsTemporariesAlive(Environment.GetEnvironmentVariable);

    /// <summary>The runtime's rule: a <c>DOTNET_</c> setting wins over the <c>COMPlus_</c> one.</summary>
    public static bool RuntimeKeepsTemporariesAlive(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return (environment("DOTNET_JITMinOpts") ?? environment("COMPlus_JITMinOpts")) is "1";
    }

    public static Tensor AddTensor(this Tensor tensor, Tensor other)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var one = 1.ToScalar();
        return tensor.add(other, one);
    }

    public static Tensor AddTensorInPlace(this Tensor tensor, Tensor other)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var one = 1.ToScalar();
        return tensor.add_(other, one);
    }

    public static Tensor SubScalar(this Tensor tensor, double value)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var scalar = value.ToScalar();
        return tensor.sub(scalar);
    }

    public static Tensor DivScalar(this Tensor tensor, double divisor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var scalar = divisor.ToScalar();
        return tensor.div(scalar);
    }

    public static Tensor DivScalarInPlace(this Tensor tensor, double divisor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var scalar = divisor.ToScalar();
        return tensor.div_(scalar);
    }
}
