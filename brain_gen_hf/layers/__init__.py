"""brain_gen_hf.layers"""
