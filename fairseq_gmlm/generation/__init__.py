from fairseq_gmlm.generation.refinement import RefinementOptions, GMLMGenerator  # noqa: F401
