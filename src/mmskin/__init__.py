"""mmskin: dermatology vision-language data and models (MM-Skin, arXiv 2505.06152), open and measured.

Stages (each reads the previous one's output from disk): ``mmskin.pdf`` (build), then curate, vqa, train,
evaluate. Importing ``mmskin`` never imports torch.

    mmskin build books/ --out data/derm
"""

__version__ = "0.1.0"
