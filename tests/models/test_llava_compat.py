"""LLaVA's prompt and image steps as MM-Skin's scripts run them: conversation templates equal to MM-Skin's verbatim
llava_conversation.py (skipped without ../shared/data), tokenizer_image_token's piece-wise tokenisation, and
image_aspect_ratio pad (expand2square with the processor's mean colour) in the hf adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mmskin.evaluate.reference_scripts import ReferenceScripts
from mmskin.models.llava_compat import (
    aspect_mode,
    conv_modes,
    conversation_templates,
    expand_to_square,
    llava_token_ids,
    pad_color,
    render_conversation,
    resolve_conv_mode,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

QUESTIONS = [
    "What does the image show?",
    "This is a skin lesion image. From the following categories: Nevus, Melanoma, which one is the diagnosis?",
    "  spaces around  ",
    "Ünïcode – “quotes” and\nnew lines",
]


@pytest.fixture(scope="module")
def reference():
    folder = SHARED / "mmskin" / "reference"
    if not (folder / "llava_conversation.py").is_file():
        pytest.skip(f"{folder}: MM-Skin's reference scripts absent (../shared/data)")
    return ReferenceScripts(folder)


@pytest.mark.parametrize("name", list(conversation_templates()))
@pytest.mark.parametrize("question", QUESTIONS)
def test_prompt_string_equals_the_reference_template(reference, name, question):
    conv_module = reference.conversation()
    conv = conv_module.conv_templates[name].copy()
    conv.append_message(conv.roles[0], "<image>\n" + question)  # DEFAULT_IMAGE_TOKEN + '\n' + question
    conv.append_message(conv.roles[1], None)
    assert render_conversation(name, [("<image>\n" + question, None)]) == conv.get_prompt()


@pytest.mark.parametrize("name", list(conversation_templates()))
def test_two_turn_conversation_equals_the_reference(reference, name):
    conv = reference.conversation().conv_templates[name].copy()
    turns = [("<image>\nWhat is shown?", "A nevus."), ("Benign?", "Yes."), ("Where?", None)]
    for q, a in turns:
        conv.append_message(conv.roles[0], q)
        conv.append_message(conv.roles[1], a)
    assert render_conversation(name, turns) == conv.get_prompt()


def test_mistral_instruct_prompt_is_the_paper_string():
    assert (
        render_conversation("mistral_instruct", [("<image>\nWhat?", None)]) == "[INST] <image>\nWhat? [/INST]"
    )


@pytest.mark.parametrize("size", [(60, 30), (30, 60), (40, 40), (7, 3)])
def test_expand_to_square_equals_the_reference(reference, size):
    im = Image.new("RGB", size, (200, 10, 10))
    clip_mean = (0.48145466, 0.4578275, 0.40821073)
    color = pad_color(type("P", (), {"image_mean": clip_mean})())
    assert color == (122, 116, 104)  # LLaVA's int(x * 255), the reference's default background
    ours, theirs = expand_to_square(im, color), reference.expand2square(im)
    assert ours.size == theirs.size and ours.tobytes() == theirs.tobytes()


class _Tok:
    """A tokenizer that adds BOS (id 1) and maps characters to ids, to check the piece-wise rule."""

    bos_token_id = 1

    def __call__(self, text):
        return type("Enc", (), {"input_ids": [1] + [ord(c) for c in text]})()


def test_llava_token_ids_tokenises_pieces_and_keeps_one_bos():
    ids = llava_token_ids(_Tok(), "ab<image>\ncd", "<image>", [9, 9])
    assert ids == [1, ord("a"), ord("b"), 9, 9, ord("\n"), ord("c"), ord("d")]
    # a prompt that starts with the image: the empty first piece is just BOS
    assert llava_token_ids(_Tok(), "<image>x", "<image>", [9]) == [1, 9, ord("x")]


def test_conv_mode_and_aspect_resolution():
    assert resolve_conv_mode("auto", "llava", paper_decoding=True) == "mistral_instruct"
    assert resolve_conv_mode("auto", "llava", paper_decoding=False) == "chat"
    assert resolve_conv_mode("auto", "qwen2_5_vl", paper_decoding=True) == "chat"
    assert resolve_conv_mode("v1", "qwen2_5_vl", paper_decoding=False) == "v1"
    llava = type("C", (), {"model_type": "llava"})()
    trained = type("C", (), {"model_type": "qwen2_5_vl", "image_aspect_ratio": "pad"})()
    assert aspect_mode("auto", llava) == "pad" and aspect_mode("none", llava) == "none"
    assert aspect_mode("auto", type("C", (), {"model_type": "qwen2_5_vl"})()) == "none"
    assert aspect_mode("auto", trained) == "pad"  # what mmskin train wrote into the merged config


def test_model_config_choices_name_every_template():
    import dataclasses

    from mmskin.evaluate.predict import ModelConfig

    field = {f.name: f for f in dataclasses.fields(ModelConfig)}["conv_mode"]
    assert tuple(field.metadata["choices"]) == conv_modes()


def test_hf_adapter_paper_prompt_tokens_and_padding(tiny):
    from mmskin.evaluate.adapters import get_adapter

    paper = get_adapter(f"hf:{tiny['llava']}", paper_decoding=True, device="cpu", max_new_tokens=3)
    assert paper.prompt_settings() == ("mistral_instruct", "pad")
    text = paper.prompt_text("What is shown?")
    assert text == "[INST] <image>\nWhat is shown? [/INST]"
    tok, proc = paper.processor.tokenizer, paper.processor
    wide = Image.new("RGB", (64, 16), (250, 250, 250))
    enc = paper._inputs([wide, wide], [text, paper.prompt_text("Q?")])
    img = proc.image_token_id
    n = 16  # (32 / 8)^2 image tokens of the tiny model
    want = (
        [tok.bos_token_id]
        + tok("[INST] ").input_ids[1:]
        + [img] * n
        + tok("\nWhat is shown? [/INST]").input_ids[1:]
    )
    assert enc["input_ids"][0].tolist() == want
    row = enc["input_ids"][1].tolist()
    pads = len(row) - int(enc["attention_mask"][1].sum())
    assert pads > 0 and row[:pads] == [paper.pad_token_id] * pads  # left padded
    # pad: the wide white image becomes a square with a mean-colour band above and below, not a centre crop
    chat = get_adapter(f"hf:{tiny['llava']}", device="cpu", image_aspect_ratio="none")
    pv_pad, pv_crop = enc["pixel_values"][0], chat._inputs([wide], [chat.prompt_text("x")])["pixel_values"][0]
    assert float(pv_pad[:, 0, :].abs().max()) < 0.02  # the mean colour normalises to ~0
    assert float(pv_crop[:, 0, :].min()) > 1.5  # the crop's top row is the white image itself
    assert len(paper.generate([wide], ["What?"])) == 1
    kw = paper.gen_kwargs()  # VQA_test.py's generate() settings
    assert kw["min_new_tokens"] == 3 and kw["num_beams"] == 5 and kw["do_sample"] and kw["temperature"] == 0.2
    assert kw["pad_token_id"] == tok.eos_token_id
