"""lightonml users' scripts, and the means to run them here or on lightonml itself.

Each script follows one of lightonml's own examples (its get-started, input/output,
saving/loading, kernels, pipeline, online NEWMA, transfer-learning and randomized
linear algebra notebooks) call for call, written anew and scaled down to run in a
second or two. They are written for lightonml; :func:`run_here` changes only their
import lines, as docs/lightonml.md states (``lightonml`` becomes
``devices.lightonml_compat``); :func:`run_on_lightonml` runs them unchanged on
lightonml 1.4.3 when it is installed.
"""

from __future__ import annotations

import re
import sys
import types

import numpy as np

IMPORT_LINE = re.compile(r"^(\s*)(import|from)\s+lightonml\b(.*)$")


def port_imports(source: str) -> str:
    """``source`` with its lightonml import lines changed as the migration page says.

    ``import lightonml`` becomes ``import devices.lightonml_compat as lightonml``; in every
    other import line ``lightonml`` becomes ``devices.lightonml_compat``.
    """
    lines = []
    for line in source.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            indent, keyword, rest = match.groups()
            if keyword == "import" and not rest:
                rest = " as lightonml"
            elif keyword == "import" and " as " not in rest:
                raise ValueError(f"{line!r}: expected 'import lightonml[.module] as name'")
            line = f"{indent}{keyword} devices.lightonml_compat{rest}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def run_here(source: str, **names) -> dict:
    """Run a lightonml script on this toolkit (import lines ported); its namespace."""
    namespace = dict(names)
    exec(compile(port_imports(source), "<lightonml script>", "exec"), namespace)
    return namespace


def import_lightonml():
    """lightonml 1.4.3 if installed, made importable on today's setuptools, else None.

    lightonml imports ``pkg_resources`` (gone from setuptools 81) and its simulator and
    bit-plane encoder use ``np.float`` (gone from NumPy 1.24): a minimal stand-in for
    the first is put in ``sys.modules`` when missing; the caller sets ``np.float``
    (``monkeypatch.setattr(np, "float", float, raising=False)``).
    """
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            import importlib.metadata as metadata

            shim = types.ModuleType("pkg_resources")

            class ResolutionError(Exception):
                pass

            class DistributionNotFound(ResolutionError):
                pass

            def get_distribution(name):
                try:
                    return types.SimpleNamespace(version=metadata.version(name))
                except metadata.PackageNotFoundError as error:
                    raise DistributionNotFound(name) from error

            def require(*requirements):
                raise DistributionNotFound(", ".join(requirements))

            shim.ResolutionError, shim.DistributionNotFound = ResolutionError, DistributionNotFound
            shim.get_distribution, shim.require = get_distribution, require
            sys.modules["pkg_resources"] = shim
    try:
        import lightonml
        from lightonml import opu  # noqa: F401
    except ImportError:
        return None
    return lightonml if lightonml.__version__ == "1.4.3" else None


def run_on_lightonml(source: str, **names) -> dict:
    """Run a lightonml script on lightonml itself (see :func:`import_lightonml`)."""
    namespace = dict(names)
    exec(compile(source, "<lightonml script>", "exec"), namespace)
    return namespace


def random_bits(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 2, size=shape, dtype=np.uint8)


# ---------------------------------------------------------------------- the scripts
# lightonml's get_started notebook (sizes scaled down): a hardware OPU().
GET_STARTED = """
import numpy as np
import torch
from lightonml import OPU

numpy_data = np.random.randint(0, 2, size=(300, 1000), dtype=np.uint8)
torch_data = torch.randint(0, 2, size=(300, 1000), dtype=torch.uint8)

opu = OPU(n_components=1000)
try:
    opu.transform(numpy_data)
except AssertionError as e:
    message_before_fit = str(e)
opu.fit1d(numpy_data)
y_np = opu.transform(numpy_data)
context = y_np.context.as_dict()
plain = np.array(y_np)
y_torch = opu.fit_transform1d(torch_data)
data_2d = np.random.randint(0, 2, size=(30, 30, 30), dtype=np.uint8)
opu.fit2d(data_2d)
y = opu.transform(data_2d)
context_2d = y.context.as_dict()
opu.close()

from lightonml.projections.sklearn import OPUMap
opumap_np = OPUMap(n_components=1000)
output = opumap_np.fit_transform(numpy_data)
opumap_np.close()

from lightonml.projections.torch import OPUMap
opumap_torch = OPUMap(n_components=1000)
output_torch = opumap_torch(torch_data)
opumap_torch.close()

simulated_opu = OPU(n_components=1000, max_n_features=1000, simulated=True)
"""

# lightonml's examples/input_output.py, the tutorial function, on an OPU given.
INPUT_OUTPUT = """
from lightonml import OPU
import numpy as np


def random_bin(shape):
    return np.random.randint(0, 2, size=shape, dtype=bool)


def opu_tutorial(opu, raw_inputs=True):
    shapes = {"n_components": opu.n_components}
    inp_1d = random_bin((200, 1000))
    shapes["fit_transform1d"] = opu.fit_transform1d(inp_1d).shape
    inp_1d_b = random_bin((200, 1000))
    opu.fit1d(inp_1d)
    shapes["two batches"] = (opu.transform(inp_1d).shape, opu.transform(inp_1d_b).shape)
    shapes["linear_transform"] = opu.linear_transform(inp_1d).shape
    opu.fit1d(n_features=inp_1d.shape[1])
    shapes["fit1d n_features"] = opu.transform(inp_1d).shape
    shapes["single"] = opu.fit_transform1d(inp_1d[0]).shape
    inp_2d = random_bin((200, 13, 10))
    shapes["2d"] = opu.fit_transform2d(inp_2d).shape
    inp_3d = random_bin((30, 10, 300))
    shapes["3d batch"] = opu.fit_transform1d(inp_3d).shape
    inp_1d_p = np.packbits(inp_1d, axis=1)
    shapes["packed"] = opu.fit_transform1d(inp_1d_p, packed=True).shape
    inp_2d_p = np.packbits(inp_2d.reshape(200, -1), axis=1)
    shapes["packed 2d"] = opu.fit_transform2d(inp_2d_p, packed=True,
                                              n_2d_features=(13, 10)).shape
    if raw_inputs:
        input_shape = tuple(opu.device.input_shape)
        single_raw_2d = random_bin(input_shape)
        single_raw_1d = np.reshape(single_raw_2d, -1)
        shapes["raw 1d"] = opu.fit_transform1d(single_raw_1d).shape
        shapes["raw 2d"] = opu.fit_transform2d(single_raw_2d).shape
        many_raw_2d = random_bin((4,) + input_shape)
        shapes["many raw 2d"] = opu.fit_transform2d(many_raw_2d).shape
    n_features1d = 1200
    opu.fit1d(n_features=n_features1d, online=True)
    for _ in range(10):
        online_out = opu.transform(random_bin(n_features1d))
    shapes["online"] = online_out.shape
    n_features2d = (50, 50)
    opu.fit2d(n_features=n_features2d, online=True)
    for _ in range(10):
        online_out = opu.transform(random_bin(n_features2d))
    shapes["online 2d"] = online_out.shape
    return shapes
"""

# lightonml's saving_and_loading notebook: pickle the OPU and both OPUMaps.
SAVING_AND_LOADING = """
import pickle
import numpy as np
import torch
from lightonml import OPU

train_data = np.random.randint(0, 2, (300, 500), dtype=np.uint8)
opu = OPU(n_components=1000)
opu.fit1d(train_data)
train_y = opu.transform(train_data)
train_context = train_y.context.as_dict()
with open(folder / "opu.pkl", "wb") as f:
    pickle.dump(opu, f)
with open(folder / "opu.pkl", "rb") as f:
    opu = pickle.load(f)
train_y_again = opu.transform(train_data)
test_data = np.random.randint(0, 2, (300, 500), dtype=np.uint8)
test_y = opu.transform(test_data)
test_context = test_y.context.as_dict()

from lightonml.projections.sklearn import OPUMap
mapping = OPUMap(opu=opu, n_components=1000)
mapping.fit(train_data)
fitted_before = mapping.fitted
with open(folder / "mapping.pkl", "wb") as f:
    pickle.dump(mapping, f)
with open(folder / "mapping.pkl", "rb") as f:
    mapping = pickle.load(f)
fitted_after = mapping.fitted
sklearn_out = mapping.transform(test_data)
mapping.close()

from lightonml.projections.torch import OPUMap
mapping = OPUMap(n_components=1000)
mapping.fit(torch.from_numpy(train_data))
with open(folder / "mapping.pkl", "wb") as f:
    pickle.dump(mapping, f)
with open(folder / "mapping.pkl", "rb") as f:
    mapping = pickle.load(f)
torch_fitted = mapping.fitted
torch_out = mapping(torch.from_numpy(test_data))
"""

# lightonml's randomized_linear_algebra notebook: the estimators, on a simulated OPU of
# the caller's size (the notebook's hardware OPU takes 2000 x 2000 matrices).
RANDOMIZED_LINEAR_ALGEBRA = """
import numpy as np
from lightonml import OPU
from lightonml.encoding import base
from lightonml.internal.simulated_device import SimulatedOpuDevice

encoder = base.SeparatedBitPlanEncoder
decoder = base.SeparatedBitPlanDecoder


def make_opu(n_components, n_features, seed):
    device = SimulatedOpuDevice()
    opu = OPU(n_components=n_components, opu_device=device, max_n_features=n_features)
    device.build_random_matrix(n_features, n_components, seed)
    return opu


def trace_estimation(opu, A, m):
    n = A.shape[0]
    opu.fit1d(A)
    s = np.random.normal(0, 1, (100, n))
    opu_var = opu.linear_transform(s, encoder, decoder).var()
    AR = opu.linear_transform(A, encoder, decoder)[:, :m]
    RTAR = opu.linear_transform(AR.T, encoder, decoder)[:, :m]
    return RTAR.trace() / m * n / opu_var


def triangle_estimation(opu, A, m):
    n = A.shape[0]
    opu.fit1d(A)
    s = np.random.normal(0, 1, (100, n))
    opu_var = opu.linear_transform(s, encoder, decoder).var()
    AR = opu.linear_transform(A, encoder, decoder)[:, :m]
    RTAR = opu.linear_transform(AR.T, encoder, decoder)[:, :m]
    return np.linalg.matrix_power(RTAR / opu_var * n / m, 3).trace()


def randomized_svd(opu, A, m, num_iter=0):
    opu.fit1d(A)
    Q = opu.linear_transform(A, encoder, decoder)[:, :m]
    Q, _ = np.linalg.qr(Q)
    for it in range(num_iter):
        Q = A @ Q
        Q, _ = np.linalg.qr(Q)
        Q = (Q.T @ A).T
        Q, _ = np.linalg.qr(Q)
    U, s, Ra = np.linalg.svd(A @ Q, full_matrices=False)
    Va = Ra @ Q.T
    return U[:, :m], s[:m], Va[:m, :]
"""

# lightonml's kernels_and_random_features notebook (digits for MNIST, a simulated OPU).
KERNELS = """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split
from lightonml.encoding.base import BinaryThresholdEncoder
from lightonml.projections.sklearn import OPUMap

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X.reshape(-1, 8, 8), y, test_size=0.3,
                                                    random_state=0)
X_train_fp = X_train.astype("float").reshape(-1, 64) / 16.0
X_test_fp = X_test.astype("float").reshape(-1, 64) / 16.0
linear = RidgeClassifier().fit(X_train_fp, y_train)
linear_accuracy = linear.score(X_test_fp, y_test)

encoder = BinaryThresholdEncoder(threshold_enc=6)
X_train_encoded = encoder.transform(X_train)
X_test_encoded = encoder.transform(X_test)
random_mapping = OPUMap(n_components=n_components, simulated=True, max_n_features=64, ndims=2)
train_random_features = random_mapping.fit_transform(X_train_encoded)
test_random_features = random_mapping.transform(X_test_encoded)
train_random_features = train_random_features.astype("float32")
test_random_features = test_random_features.astype("float32")
classifier = RidgeClassifier()
classifier.fit(train_random_features, y_train)
train_accuracy = classifier.score(train_random_features, y_train)
test_accuracy = classifier.score(test_random_features, y_test)
"""

# lightonml's pipeline_and_crossval notebook (digits, its simulated=True branch).
PIPELINE = """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV, ShuffleSplit, train_test_split
from sklearn.pipeline import Pipeline
from lightonml.encoding.base import BinaryThresholdEncoder, NoDecoding
from lightonml.projections.sklearn import OPUMap

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X.reshape(-1, 8, 8), y, test_size=0.3,
                                                    random_state=42)
pipeline_steps = []
encoder = BinaryThresholdEncoder(threshold_enc=6)
pipeline_steps.append(("encoder", encoder))
random_mapping = OPUMap(n_components=500, simulated=True, max_n_features=64, ndims=2)
pipeline_steps.append(("mapping", random_mapping))
pipeline_steps.append(("decoding", NoDecoding()))
pipeline_steps.append(("classifier", RidgeClassifier()))
pipe = Pipeline(steps=pipeline_steps)
pipe.fit(X_train, y_train)
train_accuracy = pipe.score(X_train, y_train)
test_accuracy = pipe.score(X_test, y_test)

alpha_values = 10. ** np.arange(-1, 1)
grid_parameters = [{"classifier__alpha": alpha_values}]
cv_scheme = ShuffleSplit(n_splits=2, test_size=0.15, random_state=0)
grid_search = GridSearchCV(pipe, grid_parameters, scoring="accuracy", cv=cv_scheme,
                           refit=False, return_train_score=True)
grid_search.fit(X_train, y_train)
"""

# lightonml's newma_online notebook: an online OPU as the NEWMA feature map.
NEWMA_ONLINE = """
import numpy as np
from lightonml import OPU

d, n_levels = 40, 5
rng = np.random.default_rng(0)
stream = np.concatenate([rng.normal(0.0, 1.0, (150, d)), rng.normal(1.5, 1.0, (150, d))])
mi, Ma = stream.min(), stream.max()
levels = (255 * (stream - mi) / (Ma - mi)).astype("uint8")
Xencode = np.empty((stream.shape[0], n_levels * d), dtype="uint8")
for i in range(n_levels):
    Xencode[:, i * d:(i + 1) * d] = levels > 80 + i * 20

opu = OPU(n_components=400)
opu.fit1d(n_features=Xencode.shape[1], online=True)


def feature_function(x):
    return opu.transform(x).astype("float32")


forget_fast, forget_slow = 0.1, 0.02
ewma = ewma2 = feature_function(Xencode[0])
statistic = []
for x in Xencode:
    z = feature_function(x)
    ewma = (1 - forget_fast) * ewma + forget_fast * z
    ewma2 = (1 - forget_slow) * ewma2 + forget_slow * z
    statistic.append(np.linalg.norm(ewma - ewma2))
statistic = np.array(statistic)
"""

# lightonml's transfer_learning notebook (random "convolutional features" for VGG's).
TRANSFER_LEARNING = """
import numpy as np
from sklearn.linear_model import RidgeClassifier
from lightonml.encoding.base import Float32Encoder, MixingBitPlanDecoder
from lightonml.projections.sklearn import OPUMap

rng = np.random.default_rng(1)
centers = rng.normal(0, 1, (5, 60))
labels = rng.integers(0, 5, 400)
features = np.maximum(centers[labels] + 0.8 * rng.normal(0, 1, (400, 60)), 0).astype("float32")
train_conv_features, test_conv_features = features[:300], features[300:]
train_labels, test_labels = labels[:300], labels[300:]

encoder = Float32Encoder(sign_bit=False, exp_bits=2, mantissa_bits=0)
encoder.fit(train_conv_features)
encoded_conv_train_features = encoder.transform(train_conv_features)
encoder.fit(test_conv_features)
encoded_conv_test_features = encoder.transform(test_conv_features)

opu_mapping = OPUMap(n_components=2000)
train_random_features = opu_mapping.transform(encoded_conv_train_features)
test_random_features = opu_mapping.transform(encoded_conv_test_features)

decoder = MixingBitPlanDecoder(n_bits=2)
decoder.fit(train_random_features)
train_random_features = decoder.transform(train_random_features)
decoder.fit(test_random_features)
test_random_features = decoder.transform(test_random_features)

clf = RidgeClassifier(alpha=10)
clf.fit(train_random_features, train_labels)
train_accuracy = clf.score(train_random_features, train_labels)
test_accuracy = clf.score(test_random_features, test_labels)
"""
