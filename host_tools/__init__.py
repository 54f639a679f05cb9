"""PC side of the Maix Bit toolkit: kmodel reader/emulator, simulator, model pipeline, compiler, deploy."""
