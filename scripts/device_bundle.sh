#!/usr/bin/env bash
# Builds a self-contained bundle of our programs for a machine without our
# Debian packages (no OpenBLAS, jansson, libgomp, Open MPI ...), with a newer
# glibc: scripts/device_scaling.sh runs there from it.
#
#   scripts/device_bundle.sh [BUILD_DIR]      (default build-dev)
#
# 1. a float release build with -Dmpi=enabled in BUILD_DIR;
# 2. .devbundle/ at the repository root (ignored by git: /.devbundle/ in
#    .git/info/exclude):
#      bin/        bench, charlm, seq2seq (stripped), mpirun (orterun), orted
#      lib/        every shared library they or the Open MPI / PMIx components
#                  need, except glibc's own (libc, libm, ld-linux ...)
#      ompi/mca    Open MPI's MCA components (those whose libraries we carry:
#                  verbs/UCX/OFI/PSM transports are left out), ompi/share the
#                  help files, ompi/etc its MCA parameter file
#      pmix/       PMIx's components and help files (Open MPI 4 here uses the
#                  external PMIx through mca_pmix_ext3x)
#      anchors/    the PyTorch scripts (../shared is not sent to the device)
#      data/       kjv.txt.gz: charlm's default text (the bible program's output)
#      env.sh      sourced by the device script: points Open MPI and PMIx at
#                  the bundle (OPAL_PREFIX & co, the component paths) and
#                  defines BUNDLE_LD (LD_LIBRARY_PATH for our programs only:
#                  never exported, so the device's python3 keeps its own libs)
#      MANIFEST    sizes and where each library came from
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-dev}
out=.devbundle
ompi_pkglib=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
ompi_share=/usr/share/openmpi
pmix_root=/usr/lib/x86_64-linux-gnu/pmix2
anchor_dir=${ANCHORS:-../shared/anchors}

# ---------------------------------------------------------------- build
if [ -f "$build/build.ninja" ]; then
    meson configure "$build" -Dreal=float -Dmpi=enabled -Dbuildtype=release >/dev/null
else
    meson setup "$build" -Dreal=float -Dmpi=enabled -Dbuildtype=release >/dev/null
fi
ninja -C "$build" examples/bench/bench examples/charlm/charlm examples/seq2seq/seq2seq >&2

# ---------------------------------------------------------------- layout
rm -rf "$out"
mkdir -p "$out"/{bin,lib,ompi/mca,ompi/share,ompi/etc,pmix/lib/pmix,pmix/share,anchors}
for p in bench charlm seq2seq; do
    src=$(find "$build/examples" -type f -name "$p" -perm -u+x | head -1)
    [ -n "$src" ] || { echo "device_bundle: $p not built in $build" >&2; exit 1; }
    cp "$src" "$out/bin/$p"
    strip --strip-unneeded "$out/bin/$p"
done
cp -L "$(command -v orterun)" "$out/bin/orterun"
cp "$out/bin/orterun" "$out/bin/mpirun" # a copy: links may not travel
cp -L "$(command -v orted)" "$out/bin/orted"
cp -rL "$ompi_share" "$out/ompi/share/openmpi"
cp "$pmix_root"/share/pmix-mca-params.conf "$out/pmix/share/" 2>/dev/null || true
cp -rL "$pmix_root/share/pmix" "$out/pmix/share/pmix"
cp "$pmix_root"/lib/pmix/*.so "$out/pmix/lib/pmix/"
for f in torch_rnn_bench.py torch_seq2seq_budget.py; do
    cp "$anchor_dir/$f" "$out/anchors/$f"
done
# charlm's default text (the `bible` program of bible-kjv, absent there),
# exactly what charlm reads without --text
mkdir -p "$out/data"
bible 'gen1:1-rev22:21' 2>/dev/null | gzip -9 >"$out/data/kjv.txt.gz"
[ "$(gzip -dc "$out/data/kjv.txt.gz" | wc -c)" -gt 4000000 ] ||
    { echo "device_bundle: the KJV dump failed (package bible-kjv)" >&2; exit 1; }

# the German->English corpus (scripts/make_de_en.sh, package trans-de-en)
# for scripts/device_recipe.sh
bash scripts/make_de_en.sh "$out/data/de-en" >/dev/null
gzip -9 "$out/data/de-en/train.tsv" "$out/data/de-en/test.tsv"

# Open MPI's parameter file: Debian's keeps the verbs/UCX/OFI transports off;
# the bundle does not carry them at all, and says so
cat >"$out/ompi/etc/openmpi-mca-params.conf" <<'EOF'
# .devbundle: single-node runs over shared memory (vader) and TCP only
btl_base_warn_component_unused = 0
btl = self,vader,tcp
pml = ob1
mtl = ^ofi,psm,psm2
osc = ^ucx,pt2pt
EOF

# ---------------------------------------------------------------- libraries
# glibc's own libraries: the device's (newer) ones serve our binaries
is_glibc() {
    case "$1" in
    linux-vdso.so.* | ld-linux-x86-64.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | \
        librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libmvec.so.* | libnsl.so.*) return 0 ;;
    esac
    return 1
}

# "soname path" of every non-glibc library an ELF needs (ldd: transitive)
deps_of() {
    ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r so path; do
        is_glibc "$so" || echo "$so $path"
    done
}

# Components are kept when everything they need is in this set of
# libraries (Open MPI's own, its event/hwloc/pmix/munge/zlib/udev, and what our
# programs need): a component needing verbs/UCX/OFI/PSM/CUDA is dropped
# rather than dragging those stacks along
allowed_re='^lib(open-pal|open-rte|mpi|mca_common_(sm|monitoring|ompio)|event_(core|pthreads)-2\.1|hwloc|pmix|munge|z|udev|gcc_s|stdc\+\+|gomp|openblas|gfortran|quadmath|jansson|sentencepiece|protobuf-lite)\.so'
kept=0
dropped=""
for comp in "$ompi_pkglib"/*.so; do
    ok=1
    while read -r so _; do
        [ -n "$so" ] || continue
        echo "$so" | grep -qE "$allowed_re" || { ok=0; break; }
    done < <(deps_of "$comp")
    if [ "$ok" = 1 ]; then
        cp "$comp" "$out/ompi/mca/"
        kept=$((kept + 1))
    else
        dropped="$dropped $(basename "$comp" .so)"
    fi
done

: >"$out/MANIFEST"
add_libs_of() { # elf
    deps_of "$1" | while read -r so path; do
        if [ ! -e "$out/lib/$so" ]; then
            cp -L "$path" "$out/lib/$so"
            echo "lib/$so <- $(readlink -f "$path")" >>"$out/MANIFEST"
        fi
    done
}
for e in "$out"/bin/bench "$out"/bin/charlm "$out"/bin/seq2seq "$out"/bin/orterun "$out"/bin/orted \
    "$out"/ompi/mca/*.so "$out"/pmix/lib/pmix/*.so; do
    add_libs_of "$e"
done
# the libraries' own needs (ldd is transitive for executables; be sure for dlopen'ed ones)
for l in "$out"/lib/*.so*; do add_libs_of "$l"; done
# the shared-memory btl's common library: components find it via LD_LIBRARY_PATH
for l in "$out"/lib/libmca_common_*.so*; do [ -e "$l" ] && add_libs_of "$l"; done
chmod -R u+w "$out"

# ---------------------------------------------------------------- environment
cat >"$out/env.sh" <<'EOF'
# Sourced (bash): Open MPI and PMIx from this bundle, not from /usr.
# BUNDLE_LD is the LD_LIBRARY_PATH for the bundle's programs; it is not
# exported here so that other programs (python3, torch) keep their own
# libraries. mpirun passes LD_LIBRARY_PATH on to the ranks it starts.
B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BUNDLE="$B"
export BUNDLE_LD="$B/lib"
export OPAL_PREFIX="$B/ompi"
export OPAL_EXEC_PREFIX="$B/ompi"
export OPAL_BINDIR="$B/bin"
export OPAL_LIBDIR="$B/lib"
export OPAL_PKGLIBDIR="$B/ompi/mca"
export OPAL_DATAROOTDIR="$B/ompi/share"
export OPAL_DATADIR="$B/ompi/share"
export OPAL_PKGDATADIR="$B/ompi/share/openmpi"
export OPAL_SYSCONFDIR="$B/ompi/etc"
export OMPI_MCA_mca_base_component_path="$B/ompi/mca"
export OMPI_MCA_mca_base_param_files="$B/ompi/etc/openmpi-mca-params.conf"
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export PMIX_PREFIX="$B/pmix"
export PMIX_LIBDIR="$B/lib"
export PMIX_PKGLIBDIR="$B/pmix/lib/pmix"
export PMIX_DATAROOTDIR="$B/pmix/share"
export PMIX_DATADIR="$B/pmix/share"
export PMIX_PKGDATADIR="$B/pmix/share/pmix"
export PMIX_SYSCONFDIR="$B/pmix/share"
export PMIX_MCA_mca_base_component_path="$B/pmix/lib/pmix"
# hwloc's optional plugins (PCI, OpenCL, GL, libxml discovery) are not
# carried: an empty folder, so a machine that has them does not mix them in
export HWLOC_PLUGINS_PATH="$B/hwloc-plugins"
export PATH="$B/bin:$PATH"
EOF
mkdir -p "$out/hwloc-plugins"

{
    echo "components kept: $kept; dropped (their libraries are not carried):$dropped"
    echo "built: $(git rev-parse --short HEAD) $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
    echo "size: $(du -sb "$out" | cut -f1) bytes"
} >>"$out/MANIFEST"
du -sh "$out" >&2
echo "device_bundle: $(du -sb "$out" | cut -f1) bytes in $out; $kept MCA components (dropped:$dropped)" >&2
