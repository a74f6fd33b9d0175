"""Test-only: logs how Beam's DirectRunner executed each pipeline of this process (one JSON line each).

Active only when CHURN_BEAM_SPY_LOG names a file and this folder is on PYTHONPATH
(tests/e2e/conftest.py: run_pipeline(..., beam_spy=...)). It wraps FnApiRunner.run_pipeline, the
DirectRunner's engine, and records what it ran with: the worker count and environment it chose and
the options it was given, among them TFX's `tfx_executor` label naming the component and the packages
staged for workers (`--extra_package`).
"""
import json
import os

_LOG = os.environ.get("CHURN_BEAM_SPY_LOG")

if _LOG:
    import warnings

    with warnings.catch_warnings():  # Beam's imports warn before the CLI has silenced warnings: not the CLI's output
        warnings.simplefilter("ignore")
        from apache_beam.options import pipeline_options
        from apache_beam.runners.portability.fn_api_runner import fn_runner

    _run_pipeline = fn_runner.FnApiRunner.run_pipeline

    def _spied_run_pipeline(self, pipeline, options):  # type: ignore[no-untyped-def]
        result = _run_pipeline(self, pipeline, options)
        direct = options.view_as(pipeline_options.DirectOptions)
        record = {
            "labels": options.view_as(pipeline_options.GoogleCloudOptions).labels or [],
            "direct_running_mode": direct.direct_running_mode,
            "direct_num_workers": direct.direct_num_workers,
            "workers": self._num_workers,
            "environment": type(self._default_environment).__name__,
            "extra_packages": options.view_as(pipeline_options.SetupOptions).extra_packages,
            "pid": os.getpid(),
        }
        with open(_LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        return result

    fn_runner.FnApiRunner.run_pipeline = _spied_run_pipeline
