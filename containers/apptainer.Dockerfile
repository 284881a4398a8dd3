# A tool image holding Debian unstable's apptainer (Debian 12 has none), in
# which containers/sif.sh turns a project image into a SIF. It runs with
# --privileged: apptainer mounts the squashfs it builds. A mirror that serves a
# frozen snapshot of Debian has an expired Release file for unstable; its
# signature is still checked.
ARG BASE=debian:12
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN echo "deb http://deb.debian.org/debian sid main" > /etc/apt/sources.list.d/sid.list \
    && apt-get update -qq -o Acquire::Check-Valid-Until=false \
    && apt-get install -y -qq --no-install-recommends apptainer squashfs-tools ca-certificates \
    && rm -rf /var/lib/apt/lists/*
