"""The K210 chip and its MaixPy firmware: the one place each fact about them is written.

Every other package (kmodel, compiler, pipeline, sim, deploy) imports these facts from here and restates none of
them. This package imports nothing from the rest of host_tools.
"""
