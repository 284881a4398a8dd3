"""Custom Caffe Python layers. Each module holds one idea: its maths as plain
numpy functions, and a thin `caffe.Layer` class that calls them. Prototxt
refers to them as python_param { module: "layers.<module>" layer: "<Class>" }."""
