using OpenCvSharp;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// What a camera and its light change in a face: brightness, contrast, gamma, focus, sensor noise and JPEG
/// compression, drawn per image. Per-face standardization removes brightness and contrast from the input
/// exactly (up to clipping), so for such packages those two only matter where pixels saturate; gamma, blur,
/// noise and JPEG change what the network sees either way.
/// </summary>
public static class PhotometricAugmentation
{
    private const int BlurKernel = 5;

    /// <summary>Float faces [B,1,H,W] in [0,1] to the same shape and range; randomness only from <paramref name="generator"/>.</summary>
    public static Tensor Apply(Tensor images, AugmentOptions options, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        var batch = images.shape[0];
        var view = new long[] { batch, 1, 1, 1 };
        var x = images;
        if (options.Contrast > 0)
        {
            var factor = Uniform(batch, 1 - options.Contrast, 1 + options.Contrast, generator).view(view);
            var mean = x.mean([1, 2, 3], keepdim: true);
            x = x.sub(mean).mul_(factor).add_(mean);
        }
        if (options.Brightness > 0)
        {
            x = x.add(Uniform(batch, -options.Brightness, options.Brightness, generator).view(view));
        }
        if (options.Gamma > 0)
        {
            var gamma = Uniform(batch, -options.Gamma, options.Gamma, generator).exp_().view(view);
            x = x.clamp(1e-6, 1).pow(gamma);
        }
        x = x.clamp(0, 1);
        if (options.Blur > 0) x = Blur(x, options.Blur, generator);
        if (options.Noise > 0)
        {
            var std = Uniform(batch, 0, options.Noise, generator).view(view);
            x = x.add(randn(x.shape, generator: generator).mul_(std)).clamp_(0, 1);
        }
        if (options.Jpeg > 0) x = JpegRoundTrip(x, options.Jpeg, generator);
        return x.MoveToOuterDisposeScope();
    }

    private static Tensor Uniform(long count, double low, double high, Generator generator) =>
        rand(count, generator: generator).mul_(high - low).add_(low);

    /// <summary>One depthwise convolution for the batch, each image with its own Gaussian (identity where not drawn).</summary>
    private static Tensor Blur(Tensor x, double probability, Generator generator)
    {
        var (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3]);
        var sigma = Uniform(batch, 0.3, 1.3, generator);
        var apply = rand(batch, generator: generator).lt(probability);
        var offsets = arange(BlurKernel, ScalarType.Float32).sub_(BlurKernel / 2);
        var g = offsets.square().view(1, BlurKernel).div(sigma.square().mul(-2).view(batch, 1)).exp_();
        g = g.div_(g.sum(1, keepdim: true));
        var identity = zeros(BlurKernel);
        identity[BlurKernel / 2] = tensor(1f);
        g = where(apply.view(batch, 1), g, identity.view(1, BlurKernel));
        var kernel = g.view(batch, 1, BlurKernel, 1).mul(g.view(batch, 1, 1, BlurKernel));
        var padded = nn.functional.pad(x.view(1, batch, height, width), [BlurKernel / 2, BlurKernel / 2, BlurKernel / 2, BlurKernel / 2], TorchSharp.PaddingModes.Replicate);
        return nn.functional.conv2d(padded, kernel, groups: batch).view(batch, 1, height, width);
    }

    /// <summary>JPEG through OpenCV's codec, as photos reach the recognizer; quality and choice drawn from the generator.</summary>
    private static Tensor JpegRoundTrip(Tensor x, double probability, Generator generator)
    {
        var (batch, height, width) = ((int)x.shape[0], (int)x.shape[2], (int)x.shape[3]);
        var apply = rand(batch, generator: generator).lt(probability).data<bool>().ToArray();
        var quality = rand(batch, generator: generator).mul_(70).add_(20).data<float>().ToArray();
        if (!apply.Any(a => a)) return x;
        var pixels = x.mul(255).round_().clamp_(0, 255).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var size = height * width;
        for (var i = 0; i < batch; i++)
        {
            if (!apply[i]) continue;
            using var image = Mat.FromPixelData(height, width, MatType.CV_8UC1, pixels.AsMemory(i * size, size).ToArray());
            Cv2.ImEncode(".jpg", image, out var encoded, new ImageEncodingParam(ImwriteFlags.JpegQuality, (int)quality[i]));
            using var decoded = Cv2.ImDecode(encoded, ImreadModes.Grayscale);
            decoded.GetArray(out byte[] values);
            values.CopyTo(pixels, i * size);
        }
        return tensor(pixels, [batch, 1, height, width], ScalarType.Byte).to(ScalarType.Float32).div_(255);
    }
}
