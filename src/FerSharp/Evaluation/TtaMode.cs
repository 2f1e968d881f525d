namespace FerSharp.Evaluation;

/// <summary>Averages predictions over transformed copies of each face.</summary>
public enum TtaMode
{
    /// <summary>The face as it is.</summary>
    None,
    /// <summary>The face and its mirror image.</summary>
    Flip,
    /// <summary>Five 42x42 crops (corners and centre) rescaled to 48x48, each with its mirror: 10 views.</summary>
    Crops,
}
