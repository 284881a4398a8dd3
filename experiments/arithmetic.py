"""A job's CPU arithmetic: the environment every Caffe job of a workflow
runs in, part of what decides its result (experiments/causes.py).

OpenBLAS splits its work by its thread count and picks its kernels by the
core it detects, and both change the floating-point results (measured: a
seeded training's weights differ between 1 and 2 threads, and between the
SkylakeX and Haswell kernels). So every job runs BLAS_THREADS threads
whatever --cores is (Snakemake would give it the rule's threads, scaled to
--cores), and "haswell" runs the same kernels on every CPU: Haswell's in
Caffe's and NumPy's OpenBLAS, and NumPy's own loops kept to the same level
(AVX2, FMA; x86-64-v3)."""
from common import cli
from common.cli import positive_int

BLAS_THREADS = 1
CPU_KERNELS = {"detected": {},
               "haswell": {"OPENBLAS_CORETYPE": "Haswell",
                           "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}}


def arithmetic(run):
    """{variable: value} of the environment every job of a workflow runs
    in, from its run settings ("blas_threads", "cpu_kernels")."""
    kernels = run.get("cpu_kernels", "detected")
    if kernels not in CPU_KERNELS:
        raise cli.InputError("cpu kernels %r: one of %s" % (kernels, ", ".join(CPU_KERNELS)))
    threads = run.get("blas_threads", BLAS_THREADS)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise cli.InputError("blas threads %r: a positive integer" % (threads,))
    return dict(CPU_KERNELS[kernels], OPENBLAS_NUM_THREADS=str(threads))


def add_arithmetic_options(parser):
    """--blas-threads and --cpu-kernels (the run settings of `arithmetic`),
    for the commands that run the workflow."""
    parser.add_argument("--blas-threads", type=positive_int, default=BLAS_THREADS,
                        help="OpenBLAS threads of every job, whatever --cores is (default %d): "
                             "the thread count changes a training's floating-point results"
                             % BLAS_THREADS)
    parser.add_argument("--cpu-kernels", choices=sorted(CPU_KERNELS), default="detected",
                        help="detected: the BLAS and NumPy kernels of this CPU (default); "
                             "haswell: the same kernels on every x86-64 CPU with AVX2 and FMA, "
                             "so that a seeded CPU run gives the same numbers on each")
