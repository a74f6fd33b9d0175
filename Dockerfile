# TensorFlow Serving image serving the model the pipeline pushed to serving_model/customer-model.
# Build from the repo root after `make pipeline`:  docker build -t customer-model .
# Run: docker run -p 8501:8501 -p 8500:8500 customer-model
FROM tensorflow/serving:2.16.1

ENV MODEL_NAME=customer-model
# Same layout TF Serving documents: /models/<MODEL_NAME>/<version>/saved_model.pb
COPY serving_model/customer-model /models/customer-model
COPY serving/config/models.config serving/config/monitoring.config /srv/config/
# models.config uses the repo-relative base path serving_model/customer-model; from /srv it
# resolves through this link to /models/customer-model.
RUN ln -s /models /srv/serving_model
WORKDIR /srv

EXPOSE 8500 8501
# Railway (and similar) pass the HTTP port in $PORT; default to TF Serving's 8501.
ENTRYPOINT ["/bin/sh", "-c", "exec tensorflow_model_server --port=8500 --rest_api_port=${PORT:-8501} --model_config_file=/srv/config/models.config --monitoring_config_file=/srv/config/monitoring.config --file_system_poll_wait_seconds=60 \"$@\"", "--"]
