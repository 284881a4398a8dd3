"""NetSpec generators, one module per network family (mtdnet, geng16) and
the shared bases they build on (googlenet, dgdnet) and solver schedules."""
