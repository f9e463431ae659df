"""Convert a GGUF file into a bf16 safetensors Hugging Face checkpoint.

Run by the vLLM environment's interpreter (it needs transformers, gguf,
accelerate and torch), never imported by lottery itself:

    python convert_gguf.py MODEL.gguf OUT_DIR

vLLM cannot load GGUF on CPU, so the catalogue's GGUF files are dequantised
into an ordinary checkpoint. The GGUF quantization config is dropped from the
model and its config, or vLLM would try to load the result as GGUF again.
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    """Load ``gguf`` with transformers and save model and tokenizer into ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="bfloat16")
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: convert_gguf.py MODEL.gguf OUT_DIR")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"converted {sys.argv[1]} -> {sys.argv[2]}")
