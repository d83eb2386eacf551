# A Dask worker (and scheduler) image for Turbofan Desktop's Dask executor (docs/cluster.md).
#
#   docker build -f docs/worker.Dockerfile -t turbofan-worker .            # from the checkout's root
#   docker build -f docs/worker.Dockerfile --build-arg PLUGINS="turbofan-plugin-acme==1.2" -t turbofan-worker .
#   docker run --rm --network host turbofan-worker dask worker tcp://SCHEDULER:8786 --nthreads 1
#
# The desktop, the scheduler and the workers must run the same versions of Python, dask/distributed,
# torch, the app and its plugins: build the image from the checkout the desktop runs.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

# CPU-only torch within the app's tested range (pyproject.toml keeps torch below 2.14: newer releases
# were not tested, and PyPI's Linux wheels are the multi-GB CUDA build); TORCH_SPEC must stay in
# step with that bound (tests/test_cluster_docs.py checks it).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC="torch>=2.4,<2.14"
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"

# The app with the [cluster] extra; the built-in Telemanom and Transformer plugins come with it.
COPY . /tmp/turbofan-desktop
RUN pip install --no-cache-dir "/tmp/turbofan-desktop[cluster]" && rm -rf /tmp/turbofan-desktop

# Third-party model plugins (pip requirement specifiers, space-separated); they register through
# the turbofan_desktop.plugins entry point like the built-in ones.
ARG PLUGINS=""
RUN if [ -n "${PLUGINS}" ]; then pip install --no-cache-dir ${PLUGINS}; fi

# Fail the build, not the first job, when a plugin does not load.
RUN python -c "from turbofan_desktop.plugins.manager import get_plugin_manager; \
print('model plugins:', ', '.join(sorted(get_plugin_manager().models())))"

# Workers keep nothing (a scratch home); how many torch threads a model uses comes with each job
# (the desktop's torch_threads setting; 0 = the worker's cores shared among its threads). Dask's
# statistical profiler is off: it samples a training thread every 10 ms under the interpreter lock
# (docs/cluster.md, "Worker settings").
ENV TURBOFAN_HOME=/tmp/turbofan \
    PYTHONUNBUFFERED=1 \
    DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False
RUN useradd --create-home --uid 1000 worker
USER worker
WORKDIR /home/worker

EXPOSE 8786
CMD ["dask", "worker", "tcp://scheduler:8786", "--nthreads", "1"]
