"""ExamplesUnion: the training spans' Examples as one artifact, for orchestrators that take one channel per input.

A windowed run (pipeline/spans.py) has one ExampleGen per training span, and Transform reads all of them.
LocalDagRunner takes their union (`channel.union`) as Transform's `examples`; KubeflowV2DagRunner does not
(its step builder raises "Only single Channel is supported"), so on Kubeflow Pipelines v2 and Vertex AI this
component copies the `splits` of each span's Examples artifact into one Examples artifact, file by file
(`Split-<split>/span-<n>-<file>`), and Transform reads that. Rows are not decoded or changed: the union holds
exactly the input files of those splits, in the inputs' payload and file format (which must be the same for all).
"""
from __future__ import annotations

import os
from typing import Any

from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from pipeline import config as cfg

INPUT_KEY = "examples_{index}"
"""The input key of the index-th training span's Examples (0 = the oldest)."""
OUTPUT_KEY = "examples"
SPLITS_KEY = "splits"
SPANS_PROPERTY = "spans"
"""Custom property of the union: the spans it holds, comma-separated, oldest first."""
SPAN_PROPERTY = example_gen_utils.SPAN_PROPERTY_NAME


class UnionError(ValueError):
    """The inputs cannot be joined: a missing split, or different payload or file formats."""


class Executor(base_executor.BaseExecutor):
    """Copies each input's splits into the output artifact (module docstring)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """`input_dict`: INPUT_KEY.format(index=i) -> [Examples] for i = 0..n-1; `exec_properties[SPLITS_KEY]`:
        the splits to copy, JSON list as artifact_utils encodes it. Raises UnionError (module docstring)."""
        splits = artifact_utils.decode_split_names(exec_properties[SPLITS_KEY])
        inputs = [artifact for index in range(len(input_dict))
                  for artifact in input_dict[INPUT_KEY.format(index=index)]]
        output = artifact_utils.get_single_instance(output_dict[OUTPUT_KEY])
        formats = {(examples_utils.get_payload_format(a), examples_utils.get_file_format(a)) for a in inputs}
        if len(formats) != 1:
            raise UnionError(f"the spans' examples have different payload or file formats: {sorted(formats)}")
        spans = []
        for artifact in inputs:
            span = artifact.get_int_custom_property(SPAN_PROPERTY) if artifact.has_custom_property(SPAN_PROPERTY) \
                else None
            spans.append(span)
            present = artifact_utils.decode_split_names(artifact.split_names)
            for split in splits:
                if split not in present:
                    raise UnionError(f"{artifact.uri} (span {span}) has no split {split!r}; it has {present}")
                source = artifact_utils.get_split_uri([artifact], split)
                target = os.path.join(output.uri, f"Split-{split}")
                fileio.makedirs(target)
                for path in sorted(fileio.listdir(source)):
                    fileio.copy(os.path.join(source, path), os.path.join(target, f"span-{span}-{path}"))
        output.split_names = artifact_utils.encode_split_names(list(splits))
        payload_format, file_format = formats.pop()
        examples_utils.set_payload_format(output, payload_format)
        examples_utils.set_file_format(output, file_format)
        output.set_string_custom_property(SPANS_PROPERTY, ",".join(str(s) for s in spans))


class ExamplesUnionSpec(ComponentSpec):
    """Base spec; examples_union builds one with an input per span."""

    PARAMETERS = {SPLITS_KEY: ExecutionParameter(type=str)}
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {OUTPUT_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class ExamplesUnion(base_component.BaseComponent):
    """See the module docstring; build it with examples_union."""

    SPEC_CLASS = ExamplesUnionSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, spec: ExamplesUnionSpec):
        super().__init__(spec=spec)


def examples_union(examples: list[types.BaseChannel],
                   splits: tuple[str, ...] = (cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT)) -> ExamplesUnion:
    """An ExamplesUnion of `examples` (one Examples channel per training span, oldest first) and their
    `splits` (default: the train and validation splits Transform reads). Raises ValueError: no channel."""
    if not examples:
        raise ValueError("examples_union needs at least one Examples channel")
    spec_class = type(f"ExamplesUnionSpec{len(examples)}", (ExamplesUnionSpec,), {
        "INPUTS": {INPUT_KEY.format(index=i): ChannelParameter(type=standard_artifacts.Examples)
                   for i in range(len(examples))}})
    spec = spec_class(**{SPLITS_KEY: artifact_utils.encode_split_names(list(splits))},
                      **{INPUT_KEY.format(index=i): channel for i, channel in enumerate(examples)},
                      **{OUTPUT_KEY: types.Channel(type=standard_artifacts.Examples)})
    return ExamplesUnion(spec)
