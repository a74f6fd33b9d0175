"""The throughput shortcuts give exactly what the general paths give (values, bytes, errors)."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.codec.decode import decode_predict_inputs
from serving.codec.encode import encode_predict_response, leaf_writer, object_template, scalar_objects, write_rows
from serving.codec.json_leaves import checker, scalar_column, to_array
from serving.core.errors import Code, ServingError
from serving.core.servable import Servable
from serving.core.types import Done, RequestFormat, ServableId, TensorSpec
from serving.http.bridge import LoopBridge

FAST_DTYPES = [1, 2, 9, 7, 10]  # float, double, int64, string, bool
scalars = st.one_of(st.floats(), st.integers(-2**70, 2**70), st.text(max_size=4), st.booleans(),
                    st.floats(-1e3, 1e3), st.integers(-100, 100))


def checked(values: list[Any], dtype: int) -> np.ndarray:
    """The general path: every value through its checker, then one array."""
    return to_array([checker(dtype)(v) for v in values], (len(values),), dtype)


@settings(max_examples=300, deadline=None)
@given(dtype=st.sampled_from(FAST_DTYPES), values=st.lists(scalars, min_size=1, max_size=5))
def test_scalar_column_equals_the_checked_path_or_defers(dtype: int, values: list[Any]) -> None:
    fast = scalar_column(values, dtype)
    try:
        reference = checked(values, dtype)
    except ServingError:
        assert fast is None
        return
    if fast is not None:
        assert fast.dtype == reference.dtype and fast.shape == reference.shape
        np.testing.assert_array_equal(fast, reference)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({"a": st.integers(-5, 5), "b": st.floats(-1e6, 1e6) | st.integers(0, 9),
                                            "c": st.text(max_size=3), "a2": scalars, "b2": scalars,
                                            "c2": st.text(max_size=3)}), min_size=1, max_size=4))
def test_row_objects_decode_like_the_checked_path(rows: list[dict]) -> None:
    """Inputs sharing a dtype are built as one block (a2, b2 sometimes force the checked path)."""
    specs = {"a": TensorSpec("a:0", 9, (-1,)), "b": TensorSpec("b:0", 1, (-1,)), "c": TensorSpec("c:0", 7, (-1,)),
             "a2": TensorSpec("a2:0", 9, (-1,)), "b2": TensorSpec("b2:0", 1, (-1,)), "c2": TensorSpec("c2:0", 7, (-1,))}
    try:
        tensors, _ = decode_predict_inputs({"instances": rows}, specs, 100)
    except ServingError:  # only when some value is one the checked path refuses too
        with pytest.raises(ServingError):
            for name, spec in specs.items():
                checked([row[name] for row in rows], spec.dtype)
        return
    for name, spec in specs.items():
        reference = checked([row[name] for row in rows], spec.dtype)
        assert tensors[name].dtype == reference.dtype
        np.testing.assert_array_equal(tensors[name], reference)


@settings(max_examples=100, deadline=None)
@given(batch=st.integers(0, 4), seed=st.integers(0, 1000))
def test_scalar_objects_template_equals_the_pretty_writer(batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    outputs = {"churn": rng.integers(-3, 3, batch), "p": rng.random(batch).astype(np.float32),
               "d": rng.standard_normal(batch), "ok": rng.random(batch) > 0.5,
               "s": np.array(['q"\\\n\u00e9'] * batch, dtype=object)}
    names = sorted(outputs)
    rows = {a: outputs[a].tolist() for a in names}
    leaves = {a: leaf_writer(a, outputs[a]) for a in names}
    expected = write_rows(outputs, names, rows, leaves, batch)
    assert encode_predict_response(outputs, RequestFormat.ROW) == expected  # through the cached template
    template = object_template(sorted(outputs.items()))
    assert template is not None and scalar_objects(template, [rows[a] for a in names]) == expected


@pytest.fixture(scope="module")
def tf1(model_store: Path) -> Servable:
    return Servable.load(ServableId("tf1", 1), model_store / "tf1")


def test_signature_run_casts_dtypes_and_leaves_shapes_to_the_runtime(tf1: Servable) -> None:
    signature = tf1.signatures["serving_default"]
    assert signature.run({"x": np.array([[1.0], [4.0]])})["y"].tolist() == [[2.5], [4.0]]  # float64 is cast
    # TF Serving feeds Session::Run without a shape check of its own: x is [None, 1], y = 0.5x + 2
    # broadcasts, so a [2] value gets the runtime's answer, not session.run's "Cannot feed value".
    assert signature.run({"x": np.array([1.0, 2.0], np.float32)})["y"].tolist() == [2.5, 3.0]


def test_signature_run_passes_runtime_errors_and_honours_the_timeout(tf1: Servable) -> None:
    regress = tf1.signatures["regress_x_to_y"]
    with pytest.raises(ServingError) as err:
        regress.run({"inputs": np.array([b"not an example"], dtype=object)})
    assert err.value.code == Code.INVALID_ARGUMENT and "Graph execution error" not in err.value.message
    started = time.monotonic()
    with pytest.raises(ServingError) as err:
        tf1.signatures["blocking"].run({"x": np.array([[1.0]], np.float32)}, timeout_ms=200)
    assert err.value.code == Code.DEADLINE_EXCEEDED and time.monotonic() - started < 5


def test_bridge_answers_once_and_wakes_the_loop_once_per_burst() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bridge = LoopBridge(loop, timeout_seconds=0.3)
    built: list[str] = []
    try:
        callbacks: list[Done] = []

        async def start() -> list:
            return [bridge.reply(callbacks.append, lambda r, e: built.append("ok") or r,
                                 lambda: built.append("late") or -1) for _ in range(6)]

        replies = asyncio.run_coroutine_threadsafe(start(), loop).result()
        busy, release = threading.Event(), threading.Event()
        loop.call_soon_threadsafe(lambda: busy.set() or release.wait())
        busy.wait()
        wakeups: list[object] = []
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *a: wakeups.append(a) or original(*a)  # type: ignore[method-assign]
        for value, done in enumerate(callbacks[:5]):  # one "batch" finishing while the loop is busy
            done(value, None)
        release.set()

        answers: list[int] = []

        async def collect() -> None:
            for reply in replies:
                reply.then(answers.append)

        time.sleep(0.5)
        assert len(wakeups) == 1
        callbacks[5](99, None)  # finishes after its deadline: answered once, by the timeout
        asyncio.run_coroutine_threadsafe(collect(), loop).result(timeout=5)
        assert answers == [0, 1, 2, 3, 4, -1]
        assert built == ["ok"] * 5 + ["late"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_bridge_arms_no_deadline_for_work_that_was_refused() -> None:
    """A refusal (queue full) is answered by its own error: a deadline left armed would later
    build a second, 504 response and count it in the metrics."""
    loop = asyncio.new_event_loop()
    bridge = LoopBridge(loop, timeout_seconds=0.01)
    expired: list[int] = []

    def refuse(done: Done) -> None:
        raise ServingError("full", Code.UNAVAILABLE)

    async def attempt() -> None:
        with pytest.raises(ServingError):
            bridge.reply(refuse, lambda r, e: r, lambda: expired.append(1) or -1)
        await asyncio.sleep(0.1)

    try:
        loop.run_until_complete(attempt())
    finally:
        loop.close()
    assert expired == []


def test_a_failing_reply_callback_does_not_cost_the_other_replies_of_a_drain() -> None:
    loop = asyncio.new_event_loop()
    bridge = LoopBridge(loop, timeout_seconds=5)
    callbacks: list[Done] = []
    delivered: list[int] = []

    def broken(value: int) -> None:
        raise RuntimeError("connection bug")

    async def run() -> None:
        first = bridge.reply(callbacks.append, lambda r, e: r, lambda: -1)
        second = bridge.reply(callbacks.append, lambda r, e: r, lambda: -1)
        first.then(broken)
        second.then(delivered.append)
        for value, done in enumerate(callbacks):  # both finish in one batch: one drain
            done(value, None)
        await asyncio.sleep(0.05)

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    assert delivered == [1]
