# The official TensorFlow Serving image serving the model the pipeline pushed.
# Build context: the repo root after `make pipeline` (.dockerignore sends only the files below), or
# the folder `make deploy-context` stages for Railway.
#   docker build -t customer-model . && docker run -p 8501:8501 -p 8500:8500 customer-model
FROM tensorflow/serving:2.16.1

ENV MODEL_NAME=customer-model
# The Pusher's output, as is: /models/customer-model/<version>/saved_model.pb (TF Serving's layout).
COPY serving_model/customer-model /models/customer-model
# The same config files `make serve` reads; models.config names /models/customer-model.
COPY serving/config/models.config serving/config/monitoring.config /srv/config/

EXPOSE 8500 8501
# Railway (and similar hosts) pass the HTTP port in $PORT; default to TF Serving's 8501.
ENTRYPOINT ["/bin/sh", "-c", "exec tensorflow_model_server --port=8500 --rest_api_port=${PORT:-8501} --model_config_file=/srv/config/models.config --monitoring_config_file=/srv/config/monitoring.config --file_system_poll_wait_seconds=60 \"$@\"", "--"]
