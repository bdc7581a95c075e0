#!/usr/bin/env bash
# Pack what the GPU checks (tools/gpu_check/run.sh) need on a CUDA host that has Python
# with torch, onnxruntime and pytest but no DICOM stack, no DCMTK and no network (the
# device machine of docs/node-speed.md). Run here, from the repository root:
#
#   tools/gpu_check/pack.sh [PYTHON_VERSION]      # the host's Python; default 3.12
#
# It writes .gpu-kit/ (ignored by git), about 27 MB:
#   site-cpXY.tar.xz  the packages of tools/gpu_check/wheels.txt, installed for that
#                     Python and pruned (nvImageCodec's bindings for other Pythons and its
#                     OpenCV and TIFF extensions); about 19 MB
#   dcmtk/            storescu and storescp, built from Debian's DCMTK source package with
#                     the C++ runtime linked in and the data dictionary built in, so they
#                     need nothing but glibc >= 2.36 (about 8 MB)
# The DCMTK build takes about 6 minutes on 2 cores, once; it needs cmake, g++ and
# dpkg-dev, and reaches deb.debian.org.
set -euo pipefail

PY_VERSION=${1:-3.12}
TAG=cp${PY_VERSION/./}
KIT=.gpu-kit
PIP=(.venv/bin/python -m pip)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

[ -f tools/gpu_check/wheels.txt ] || { echo "run from the repository root" >&2; exit 2; }
mkdir -p "$KIT"

pack_site() {
    local wheels="$KIT/wheels" site="$KIT/site"
    rm -rf "$wheels" "$site"
    echo "downloading the wheels for Python $PY_VERSION"
    grep -v '^#' tools/gpu_check/wheels.txt | grep . | xargs "${PIP[@]}" download -q --no-deps \
        --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
        "${PLATFORMS[@]}" -d "$wheels"
    "${PIP[@]}" install -q --no-deps --no-compile --only-binary=:all: --target "$site" \
        --python-version "$PY_VERSION" --implementation cp --abi "$TAG" "${PLATFORMS[@]}" \
        "$wheels"/*.whl
    local codec="$site/nvidia/nvimgcodec"
    find "$codec" -maxdepth 1 -name 'nvimgcodec_impl.cpython-*' ! -name "nvimgcodec_impl.cpython-${TAG#cp}-*" -delete
    rm -f "$codec"/extensions/lib{opencv,tiff,nvtiff}_ext.so*
    find "$site" -name __pycache__ -prune -exec rm -rf {} +
    echo "compressing the site ($(du -sh "$site" | cut -f1))"
    rm -f "$KIT"/site-*.tar.xz  # one site travels: the host's
    tar -cJf "$KIT/site-$TAG.tar.xz" -C "$KIT" site
    rm -rf "$wheels" "$site"
}

build_dcmtk() {
    local work="$KIT/dcmtk-build" codename
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    rm -rf "$work" && mkdir -p "$work/lists/partial" "$work/cache"
    echo "deb-src http://deb.debian.org/debian $codename main" >"$work/sources.list"
    local apt=(-o Dir::Etc::SourceList="$PWD/$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
               -o Dir::State::Lists="$PWD/$work/lists" -o Dir::Cache="$PWD/$work/cache")
    apt-get -q "${apt[@]}" update >/dev/null
    (cd "$work" && apt-get -q "${apt[@]}" source dcmtk >/dev/null 2>&1)
    local source
    source=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'dcmtk-*' | head -1)
    echo "building storescu and storescp from $(basename "$source") (a few minutes)"
    cmake -S "$source" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DCMAKE_INSTALL_DATADIC=share/dcmtk -DDCMTK_DEFAULT_DICT=builtin \
        -DDCMTK_WITH_OPENSSL=OFF -DDCMTK_WITH_XML=OFF \
        -DDCMTK_WITH_ICU=OFF -DDCMTK_WITH_WRAP=OFF -DDCMTK_WITH_PNG=OFF -DDCMTK_WITH_TIFF=OFF \
        -DDCMTK_WITH_SNDFILE=OFF -DDCMTK_WITH_ZLIB=OFF -DDCMTK_WITH_OPENJPEG=OFF \
        -DDCMTK_WITH_DOXYGEN=OFF -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" \
        >"$work/cmake.log"
    make -C "$work/build" -j "$(nproc)" storescu storescp >"$work/make.log" 2>&1
    mkdir -p "$KIT/dcmtk"
    for tool in storescu storescp; do
        strip -o "$KIT/dcmtk/$tool" "$work/build/bin/$tool"
    done
    rm -rf "$work"
}

[ -f "$KIT/site-$TAG.tar.xz" ] || pack_site
[ -x "$KIT/dcmtk/storescu" ] || build_dcmtk
"$KIT/dcmtk/storescu" --version | sed -n 1p
du -sh "$KIT"/site-*.tar.xz "$KIT/dcmtk"
echo "next: tools/gpu_check/slim.sh away, then run tools/gpu_check/run.sh on the GPU host"
