// Marks one symbol-version requirement of an ELF shared library as weak.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so was linked against GCC 13's libstdc++ and so lists
// GLIBCXX_3.4.32 among its needed versions. Debian 12 / Ubuntu 22.04 ship libstdc++ up to 3.4.30,
// and the dynamic loader refuses to load a library whose non-weak version need is unmet. The only
// symbol bound to that version is std::ios_base_library_init(), a link-time marker nothing relocates
// against, so setting VER_FLG_WEAK on that one Vernaux entry lets glibc load the library (it then only
// warns under LD_DEBUG) while every real symbol keeps its normal version check.
//
// This file is compiled twice: as an MSBuild inline task (RoslynCodeTaskFactory, see
// build/FerSharp.targets, imported by Directory.Build.targets here and shipped in the NuGet package) and,
// with FERSHARP_ELF_CORE_ONLY defined, into the test project.
using System;
using System.IO;
using System.Text;

namespace FerSharp.Build
{
    public enum ElfPatchOutcome
    {
        Patched,
        AlreadyWeak,
        VersionNotNeeded,
    }

    public static class ElfVersionNeed
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>Lists every (library, version, flags) need declared in <c>.gnu.version_r</c>.</summary>
        public static (string File, string Version, ushort Flags)[] ReadNeeds(byte[] elf)
        {
            var list = new System.Collections.Generic.List<(string, string, ushort)>();
            Walk(elf, (file, version, flagsOffset) =>
            {
                list.Add((file, version, BitConverter.ToUInt16(elf, flagsOffset)));
                return false;
            });
            return list.ToArray();
        }

        /// <summary>
        /// Sets VER_FLG_WEAK on the need for <paramref name="version"/> in <paramref name="elf"/> (in place).
        /// </summary>
        public static ElfPatchOutcome WeakenInMemory(byte[] elf, string version)
        {
            var outcome = ElfPatchOutcome.VersionNotNeeded;
            Walk(elf, (file, name, flagsOffset) =>
            {
                if (name != version)
                {
                    return false;
                }
                var flags = BitConverter.ToUInt16(elf, flagsOffset);
                if ((flags & VerFlgWeak) != 0)
                {
                    outcome = ElfPatchOutcome.AlreadyWeak;
                    return false;
                }
                var weak = (ushort)(flags | VerFlgWeak);
                elf[flagsOffset] = (byte)(weak & 0xff);
                elf[flagsOffset + 1] = (byte)(weak >> 8);
                outcome = ElfPatchOutcome.Patched;
                return false;
            });
            return outcome;
        }

        /// <summary>
        /// Patches <paramref name="path"/> through a temp file and rename, so a hard link into the NuGet
        /// cache is never written through and a crash never leaves a half-written library.
        /// </summary>
        public static ElfPatchOutcome WeakenFile(string path, string version)
        {
            var bytes = File.ReadAllBytes(path);
            var outcome = WeakenInMemory(bytes, version);
            if (outcome != ElfPatchOutcome.Patched)
            {
                return outcome;
            }
            // Copy first so the temp file keeps the original's permissions, then overwrite its bytes.
            // (Written against netstandard2.0: RoslynCodeTaskFactory compiles inline tasks with it.)
            var tmp = path + ".weaken-tmp";
            File.Copy(path, tmp, true);
            using (var stream = new FileStream(tmp, FileMode.Truncate, FileAccess.Write))
            {
                stream.Write(bytes, 0, bytes.Length);
            }
            File.Replace(tmp, path, null);
            return outcome;
        }

        /// <summary>True when some libstdc++ the loader would pick already provides <paramref name="version"/>.</summary>
        public static bool SystemLibStdCxxHas(string version)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6",
                "/usr/lib/libstdc++.so.6",
                "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            };
            var needle = Encoding.ASCII.GetBytes(version + "\0");
            foreach (var candidate in candidates)
            {
                if (File.Exists(candidate))
                {
                    return IndexOf(File.ReadAllBytes(candidate), needle) >= 0;
                }
            }
            // No libstdc++ found at all: patching cannot hurt, and loading would fail anyway.
            return false;
        }

        private static int IndexOf(byte[] haystack, byte[] needle)
        {
            for (var i = 0; i <= haystack.Length - needle.Length; i++)
            {
                var j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j])
                {
                    j++;
                }
                if (j == needle.Length)
                {
                    return i;
                }
            }
            return -1;
        }

        // Calls visit(file, versionName, offsetOfVnaFlags) for each Vernaux; stops when it returns true.
        private static void Walk(byte[] elf, Func<string, string, int, bool> visit)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            {
                throw new InvalidDataException("not an ELF file");
            }
            if (elf[4] != 2 || elf[5] != 1)
            {
                throw new InvalidDataException("only 64-bit little-endian ELF is supported");
            }
            var shoff = checked((int)BitConverter.ToUInt64(elf, 0x28));
            var shentsize = BitConverter.ToUInt16(elf, 0x3A);
            var shnum = BitConverter.ToUInt16(elf, 0x3C);
            if (shoff <= 0 || shentsize < 64 || (long)shoff + (long)shentsize * shnum > elf.Length)
            {
                throw new InvalidDataException("section header table out of range");
            }
            for (var i = 0; i < shnum; i++)
            {
                var sh = shoff + i * shentsize;
                if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed)
                {
                    continue;
                }
                var secOff = checked((int)BitConverter.ToUInt64(elf, sh + 0x18));
                var secSize = checked((int)BitConverter.ToUInt64(elf, sh + 0x20));
                var link = BitConverter.ToUInt32(elf, sh + 0x28);
                var count = BitConverter.ToUInt32(elf, sh + 0x2C); // sh_info = number of Verneed entries
                if (link >= shnum)
                {
                    throw new InvalidDataException(".gnu.version_r links to a missing string table");
                }
                var strSh = shoff + (int)link * shentsize;
                var strOff = checked((int)BitConverter.ToUInt64(elf, strSh + 0x18));
                var strSize = checked((int)BitConverter.ToUInt64(elf, strSh + 0x20));
                if ((long)secOff + secSize > elf.Length || (long)strOff + strSize > elf.Length)
                {
                    throw new InvalidDataException("version section out of range");
                }
                var need = secOff;
                for (var n = 0; n < count; n++)
                {
                    Require(need + 16 <= secOff + secSize);
                    var cnt = BitConverter.ToUInt16(elf, need + 2);
                    var file = ReadString(elf, strOff, strSize, BitConverter.ToUInt32(elf, need + 4));
                    var aux = need + (int)BitConverter.ToUInt32(elf, need + 8);
                    for (var a = 0; a < cnt; a++)
                    {
                        Require(aux + 16 <= secOff + secSize && aux >= secOff);
                        var name = ReadString(elf, strOff, strSize, BitConverter.ToUInt32(elf, aux + 8));
                        if (visit(file, name, aux + 4))
                        {
                            return;
                        }
                        var nextAux = BitConverter.ToUInt32(elf, aux + 12);
                        if (nextAux == 0)
                        {
                            break;
                        }
                        aux += (int)nextAux;
                    }
                    var next = BitConverter.ToUInt32(elf, need + 12);
                    if (next == 0)
                    {
                        break;
                    }
                    need += (int)next;
                }
            }
        }

        private static void Require(bool ok)
        {
            if (!ok)
            {
                throw new InvalidDataException("malformed .gnu.version_r entry");
            }
        }

        private static string ReadString(byte[] elf, int strOff, int strSize, uint index)
        {
            if (index >= strSize)
            {
                throw new InvalidDataException("string index out of range");
            }
            var start = strOff + (int)index;
            var end = start;
            while (end < strOff + strSize && elf[end] != 0)
            {
                end++;
            }
            return Encoding.ASCII.GetString(elf, start, end - start);
        }
    }

#if !FERSHARP_ELF_CORE_ONLY
    /// <summary>MSBuild task: weakens <see cref="Version"/> in each of <see cref="Files"/> when needed.</summary>
    public sealed class WeakenElfVersionNeed : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        [Microsoft.Build.Framework.Required]
        public string Version { get; set; } = "";

        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux) || Files.Length == 0)
            {
                return true;
            }
            if (ElfVersionNeed.SystemLibStdCxxHas(Version))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "System libstdc++ provides {0}; nothing to patch.", Version);
                return true;
            }
            foreach (var item in Files)
            {
                var path = item.ItemSpec;
                try
                {
                    var outcome = ElfVersionNeed.WeakenFile(path, Version);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, "{0}: {1} need for {2}", path, outcome, Version);
                }
                catch (Exception ex)
                {
                    Log.LogError("Could not weaken {0} in {1}: {2}", Version, path, ex.Message);
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
