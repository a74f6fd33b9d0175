# Alertmanager with this project's routes (alertmanager.yml) baked in, for hosts that cannot mount a file
# (Railway: a service with root directory /monitoring and RAILWAY_DOCKERFILE_PATH=alertmanager.Dockerfile;
# docs/monitoring.md, "Pushgateway and Alertmanager in each deployment"). Docker Compose and Kubernetes mount
# the file into the same image instead. Same pinned version as docker-compose.yml and kubernetes/alertmanager.yaml.
FROM prom/alertmanager:v0.27.0

COPY alertmanager.yml /etc/alertmanager/alertmanager.yml

EXPOSE 9093
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager", "--cluster.listen-address="]
