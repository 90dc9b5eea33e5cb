"""brain_gen_hf.evaluation"""
