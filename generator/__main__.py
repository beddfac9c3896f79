from generator.start import run

run()
