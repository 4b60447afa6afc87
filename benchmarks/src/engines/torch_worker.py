#!/usr/bin/env python3
"""PyTorch's side of the benchmark suite: a worker process that speaks the suite's protocol
(benchmarks/src/protocol.ts: one JSON request per line on stdin, replies prefixed with
'@bench-reply ' on stdout) and runs every workload as a PyTorch user would: nn-style parameters,
torch.optim.Adam; derivatives in x by a double backward (SSM-VR: a VJP with create_graph, then the
parameters' backward pass through it) and by functorch's vmap of jvp (exact ISM), the HVP reverse
over reverse (engines.ts says the same in the row's note). It also computes the suite's float64 reference values ('reference' requests).

    python3 torch_worker.py --threads 1|default --device cpu|cuda

Run it with Debian's /usr/bin/python3 (python3-torch and libopenblas0-pthread from
scripts/setup-peers.sh). With --threads 1 the worker sets torch's intra-op and inter-op threads to 1,
and the suite also sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to 1 before Python
starts, since OpenBLAS sizes its thread pool when it loads; with --threads default nothing is set,
and torch and OpenBLAS choose as they would for a user.
"""

import argparse
import json
import math
import os
import sys
import time

REPLY_PREFIX = "@bench-reply "
PARAM_NAMES = ["layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias", "out.weight", "out.bias"]

torch = None
np = None


def finite_or_none(value):
    """The message with each float that is not finite (NaN, ±inf) as None: JSON has neither, and
    json.dumps would write NaN and Infinity, which JSON.parse refuses. Node's JSON.stringify writes
    null for them too, so a PyTorch value that is not finite reaches the value check as a Node
    engine's does (a mismatch: "a value is not finite")."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def reply(message):
    sys.stdout.write(REPLY_PREFIX + json.dumps(finite_or_none(message), allow_nan=False) + "\n")
    sys.stdout.flush()


def read_inputs(path):
    """Reads an input bundle (benchmarks/src/inputs.ts): uint32 header length, JSON header, float32 data."""
    with open(path, "rb") as f:
        blob = f.read()
    header_length = int.from_bytes(blob[:4], "little")
    header = json.loads(blob[4 : 4 + header_length].decode("utf8"))
    data = blob[4 + header_length :]
    arrays = {}
    for entry in header["arrays"]:
        flat = np.frombuffer(data, dtype=np.float32, count=entry["length"], offset=entry["offset"])
        arrays[entry["name"]] = flat.reshape(entry["shape"]).copy()
    return arrays


def loaded_blas():
    """The BLAS and LAPACK libraries mapped into this process (Debian's torch links the generic
    libblas.so.3, which the alternatives system points at OpenBLAS when libopenblas0-pthread is in)."""
    found = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if "/" in line else ""
                name = os.path.basename(path)
                if "blas" in name or "lapack" in name or "mkl" in name:
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def openblas_threads(paths):
    import ctypes

    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            get_threads = lib.openblas_get_num_threads
            get_config = lib.openblas_get_config
            get_config.restype = ctypes.c_char_p
            return get_threads(), get_config().decode()
        except (OSError, AttributeError):
            continue
    return None, None


def optimized_blas(paths, blas_info):
    """The optimised BLAS PyTorch's products run on, by name ("OpenBLAS", "MKL", "BLIS"), from the
    libraries mapped into the process (Debian's torch, through libblas.so.3's alternative) or
    torch's own BLAS_INFO (a build that links MKL statically maps no separate library); None for
    the reference BLAS, whose products run about ten times slower: timing that would be unfair to
    PyTorch."""
    # Whole paths: Debian's OpenBLAS is .../openblas-pthread/libblas.so.3, its reference BLAS .../blas/libblas.so.3.
    mapped = " ".join(p.lower() for p in paths)
    info = blas_info.lower()
    # (name, its word in a mapped library's path, torch's BLAS_INFO values for it)
    for name, word, infos in (("OpenBLAS", "openblas", ("open", "openblas")), ("MKL", "mkl", ("mkl",)), ("BLIS", "blis", ("blis",)), ("Accelerate", "accelerate", ("accelerate",))):
        if word in mapped or info in infos:
            return name
    return None


class Engine:
    def __init__(self, threads, device):
        self.threads_arg = threads
        self.device_name = device
        self.case = None
        self.dtype = None  # float32 for the engine's own cases; float64 while computing a reference

    # -- hello ---------------------------------------------------------------------------------

    def hello(self):
        global torch, np
        try:
            import numpy
            import torch as torch_module
        except ImportError as error:
            return {
                "available": False,
                "reason": f"{sys.executable} cannot import torch ({error}); run scripts/setup-peers.sh (Debian: python3-torch, libopenblas0-pthread)",
            }
        torch, np = torch_module, numpy
        default_threads = torch.get_num_threads()
        if self.threads_arg == "1":
            # Intra-op (ATen's OpenMP pool) and inter-op threads both: the row says one thread, and
            # the inter-op pool is sized by the core count whatever OMP_NUM_THREADS says. It can
            # only be set before any inter-op work, which nothing has done yet.
            torch.set_num_threads(1)
            torch.set_num_interop_threads(1)
        if self.device_name == "cuda":
            if not torch.cuda.is_available():
                return {
                    "available": False,
                    "reason": "torch.cuda.is_available() is False: no NVIDIA GPU and driver here (and Debian's python3-torch is a CPU-only build)",
                }
            self.device = torch.device("cuda")
        else:
            self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.warm_up()
        blas = loaded_blas()
        blas_threads, blas_config = openblas_threads(blas)
        config = torch.__config__.show()
        blas_info = next((part.split("=", 1)[1] for part in config.replace(",", "\n").split() if part.startswith("BLAS_INFO=")), "unknown")
        blas_name = optimized_blas(blas, blas_info)
        if self.device.type == "cpu" and blas_name is None:
            return {
                "available": False,
                "reason": f"this torch calls a reference BLAS (BLAS_INFO={blas_info}; mapped: {', '.join(blas) or 'none'}), "
                "whose products run about ten times slower than OpenBLAS's: timing it would be unfair to PyTorch; "
                "install libopenblas0-pthread (scripts/setup-peers.sh)",
            }
        details = {
            "python": sys.version.split()[0],
            "pythonExecutable": sys.executable,
            "torchDefaultThreads": default_threads,
            "interopThreads": torch.get_num_interop_threads(),
            "blasInfo": blas_info,
            "blasLibraries": ", ".join(blas) or "none mapped",
            "openblasThreads": blas_threads if blas_threads is not None else "n/a",
            "openblasConfig": blas_config or "n/a",
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "functorch": self.has_functorch(),
        }
        if self.device.type == "cuda":
            details["cudaDevice"] = torch.cuda.get_device_name(0)
        return {
            "available": True,
            "version": f"torch {torch.__version__}",
            "backend": f"{self.device.type}" + (f" ({blas_name})" if blas_name else ""),
            "threads": torch.get_num_threads() if blas_threads is None else f"torch {torch.get_num_threads()}, OpenBLAS {blas_threads}",
            "details": details,
        }

    def warm_up(self):
        # Until glibc's malloc raises its mmap threshold (it does so when a large mmapped block is
        # freed), every ~0.5 MB tensor is a fresh mmap that page-faults on first touch: a cold
        # SSM-VR step runs 3× slower than any step of a long training run. One large product and
        # its freed buffers raise the threshold.
        a = torch.randn(2048, 2048, device=self.device)
        (a @ a).sum().item()
        del a

    @staticmethod
    def has_functorch():
        try:
            import functorch  # noqa: F401

            return True
        except ImportError:
            return False

    # -- cases ---------------------------------------------------------------------------------

    def tensor(self, array):
        return torch.from_numpy(array).to(self.device, self.dtype)

    @staticmethod
    def mlp(p, x):
        F = torch.nn.functional
        h = F.softplus(x @ p[0] + p[1])
        h = F.softplus(h @ p[2] + p[3])
        return h @ p[4] + p[5]

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def prepare(self, spec, inputs_path):
        arrays = read_inputs(inputs_path)
        kind = spec["workload"]
        if kind == "matmul":
            return self.prepare_matmul(spec, arrays)
        if kind == "langevin":
            return self.prepare_langevin(spec, arrays)
        if kind == "hvp":
            return self.prepare_hvp(spec, arrays)
        if kind == "conv":
            return self.prepare_conv(spec, arrays)
        return self.prepare_training(spec, arrays)

    def prepare_matmul(self, spec, arrays):
        a, b = self.tensor(arrays["a"]), self.tensor(arrays["b"])
        u, w = arrays["u"].astype(np.float64), arrays["w"].astype(np.float64)

        def value():
            c = (a @ b).cpu().numpy().astype(np.float64)
            return [float(u @ c @ w)]

        def step():
            c = a @ b
            c[0, 0].item()

        return value, step

    def prepare_training(self, spec, arrays):
        fwAD = torch.autograd.forward_ad
        params = [self.tensor(arrays[name]).requires_grad_(True) for name in PARAM_NAMES]
        x = self.tensor(arrays["x"])
        dim, n = spec["net"]["dim"], spec["batch"]
        kind = spec["workload"]
        if kind == "ssmvr":
            v = self.tensor(arrays["projection"])

            def loss():
                # vᵀ(∂s/∂x)v as a VJP with create_graph, then ∇θ by a backward pass through it:
                # the double backward of Song et al.'s reference code, PyTorch 1.13's fastest
                # route here (forward mode, fwAD or functorch.jvp, took ~1.25× as long; NOTES).
                xx = x.detach().requires_grad_(True)
                s = self.mlp(params, xx)
                (vj,) = torch.autograd.grad((s * v).sum(), xx, create_graph=True)
                return ((vj * v).sum(1) + 0.5 * (s * s).sum(1)).mean()

        elif kind == "dsm":
            z, sigma = self.tensor(arrays["noise"]), spec["sigma"]

            def loss():
                s = self.mlp(params, x + sigma * z)
                return (0.5 * ((s + z / sigma) ** 2).sum(1)).mean()

        elif self.has_functorch():
            import functorch

            # One JVP per basis vector e_j, batched by vmap (as functorch documents for Jacobians):
            # the j-th entry of the JVP along e_j is ∂s_j/∂x_j. The value s does not depend on the
            # tangent, so vmap computes it once; the replicated batch below ran it d times (2-4×
            # as long at d = 8 and 32; NOTES).
            eye = torch.eye(dim, device=self.device, dtype=self.dtype)

            def loss():
                def along(e):
                    t = e.expand(n, dim)
                    s, jv = functorch.jvp(lambda xx: self.mlp(params, xx), (x,), (t,))
                    return s, (jv * t).sum(1)

                s, diagonal = functorch.vmap(along)(eye)
                return (0.5 * (s[0] ** 2).sum(1) + diagonal.sum(0)).mean()

        else:
            # Without functorch: block j of X = [x; …; x] moves along e_j; the j-th entry of its
            # JVP row is ∂s_j/∂x_j.
            replicated = x.repeat(dim, 1)
            basis = torch.eye(dim, device=self.device, dtype=self.dtype).repeat_interleave(n, dim=0)

            def loss():
                with fwAD.dual_level():
                    s, jv = fwAD.unpack_dual(self.mlp(params, fwAD.make_dual(replicated, basis)))
                    trace = (jv * basis).sum(1).reshape(dim, n).sum(0)
                    return (0.5 * (s[:n] ** 2).sum(1) + trace).mean()

        adam = spec["adam"]
        optimizer = torch.optim.Adam(params, lr=adam["lr"], betas=(adam["beta1"], adam["beta2"]), eps=adam["eps"])

        def one_step():
            optimizer.zero_grad(set_to_none=True)
            value = loss()
            value.backward()
            optimizer.step()
            return value.item()

        def value():
            before = one_step()
            return [before, loss().item()]

        return value, one_step

    def prepare_langevin(self, spec, arrays):
        params = [self.tensor(arrays[name]) for name in PARAM_NAMES]
        state = {"x": self.tensor(arrays["init"])}
        weights = arrays["checkWeights"].astype(np.float64)

        def update(x, noise, alpha):
            return x + (alpha / 2) * self.mlp(params, x) + math.sqrt(alpha) * noise

        @torch.no_grad()
        def value():
            x = state["x"]
            last = spec["checkSigmas"][-1]
            k = 0
            for sigma in spec["checkSigmas"]:
                alpha = spec["stepSize"] * sigma * sigma / (last * last)
                for _ in range(spec["checkStepsPerLevel"]):
                    x = update(x, self.tensor(arrays[f"noise{k}"]), alpha)
                    k += 1
            p = x.cpu().numpy().astype(np.float64)
            return [float(p[:, 0].mean()), float(p[:, 1].mean()), float((p * p).sum(1).mean()), float((weights * p).sum(1).mean())]

        @torch.no_grad()
        def step():
            # One level, so α is the step size itself; the noise is PyTorch's own.
            x = state["x"]
            for _ in range(spec["stepsPerRep"]):
                x = update(x, torch.randn_like(x), spec["stepSize"])
            x[0, 0].item()
            state["x"] = x

        return value, step

    def prepare_hvp(self, spec, arrays):
        params = tuple(self.tensor(arrays[name]) for name in PARAM_NAMES)
        tangents = tuple(self.tensor(arrays[f"tangent.{name}"]) for name in PARAM_NAMES)
        x = self.tensor(arrays["x"])

        def summed_output(*p):
            return self.mlp(p, x).sum()

        def product():
            # Reverse over reverse: ∇θ⟨∇θ f, v⟩ = Hv (H symmetric), two backward passes. PyTorch
            # 1.13's fastest route here: functorch's forward over reverse took ~1.17× as long
            # (NOTES). The last bias has no second derivative (None from autograd): its product
            # is zero.
            q = tuple(t.detach().requires_grad_(True) for t in params)
            gradient = torch.autograd.grad(summed_output(*q), q, create_graph=True)
            dot = sum((g * t).sum() for g, t in zip(gradient, tangents))
            out = torch.autograd.grad(dot, q, allow_unused=True)
            return [torch.zeros_like(p) if o is None else o for o, p in zip(out, q)]

        def value():
            return [float(v) for t in product() for v in t.detach().cpu().numpy().reshape(-1)]

        def step():
            out = product()
            out[0].reshape(-1)[0].item()  # a computed product (the last bias's is a zero made here)

        return value, step

    def prepare_conv(self, spec, arrays):
        # W7: F.conv2d (NCHW, OIHW); with the backward pass, y.backward(r) gives the gradients of
        # <y, r> in x and w.
        F = torch.nn.functional
        x, w, r = (self.tensor(arrays[name]) for name in ("x", "w", "r"))
        checks = [arrays[name].astype(np.float64).reshape(-1) for name in (("r", "s", "t") if spec["backward"] else ("r",))]
        pad = spec["padding"]

        def run():
            if not spec["backward"]:
                with torch.no_grad():
                    return [F.conv2d(x, w, padding=pad)]
            xx = x.detach().requires_grad_(True)
            ww = w.detach().requires_grad_(True)
            y = F.conv2d(xx, ww, padding=pad)
            y.backward(r)
            return [y.detach(), xx.grad, ww.grad]

        def value():
            out = run()
            return [float(t.detach().cpu().numpy().astype(np.float64).reshape(-1) @ c) for t, c in zip(out, checks)]

        def step():
            out = run()
            out[-1].reshape(-1)[0].item()

        return value, step

    def reference(self, spec, inputs_path):
        """The case's value in float64 on the CPU from the same float32 inputs: the suite's reference
        when this worker is available (it is independent of scorch, and fast where scorch's float64
        CPU backend takes minutes); the suite's tests check it against scorch's own float64 values."""
        saved = (self.dtype, self.device)
        self.dtype, self.device = torch.float64, torch.device("cpu")
        try:
            value, _ = self.prepare(spec, inputs_path)
            start = time.perf_counter()
            result = value()
            return {"value": result, "valueMs": (time.perf_counter() - start) * 1e3}
        finally:
            self.dtype, self.device = saved

    # -- loop ----------------------------------------------------------------------------------

    def handle(self, request):
        op = request["op"]
        if op == "hello":
            return self.hello()
        if op == "prepare":
            self.case = None
            value, step = self.prepare(request["spec"], request["inputs"])
            start = time.perf_counter()
            result = value()
            value_ms = (time.perf_counter() - start) * 1e3
            self.case = step
            return {"value": result, "valueMs": value_ms}
        if op == "step":
            if self.case is None:
                raise RuntimeError("step before prepare")
            start = time.perf_counter()
            self.case()
            self.sync()
            return {"ms": (time.perf_counter() - start) * 1e3}
        if op == "reference":
            return self.reference(request["spec"], request["inputs"])
        if op == "release":
            self.case = None
            return None
        if op == "exit":
            return None
        raise ValueError(f"unknown op {op!r}; expected hello, prepare, step, reference, release or exit")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", choices=["1", "default"], default="1")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    engine = Engine(args.threads, args.device)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply({"id": request["id"], "ok": True, "result": engine.handle(request)})
        except Exception as error:  # every failure goes back to the suite as its row's reason
            import traceback

            traceback.print_exc(file=sys.stderr)
            reply({"id": request["id"], "ok": False, "error": f"{type(error).__name__}: {error}"})
        if request["op"] == "exit":
            break


if __name__ == "__main__":
    main()
