"""Checks shared by the causal RVQ tokenizer families (BrainOmni, BrainTokMix): parity, streaming, causality."""

from __future__ import annotations

import torch

from brain_gen_hf.conversion import convert_reference_checkpoint
from tests.refvec import RefCase, assert_float_close

FORWARD_TERMS = ("loss", "l1", "pcc", "amp", "phi", "commit", "ppl")


def converted(case: RefCase):
    return convert_reference_checkpoint(case.registry_name, case.model_kwargs, case.state_dict)


def metadata(case: RefCase, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    i = case.inputs
    return i[prefix + "x"], i[prefix + "pos"], i[prefix + "sensor_type"]


def check_eval_parity(case: RefCase) -> None:
    """Every recorded eval-mode output: forward terms, intermediates, encode, decode, partial levels."""
    model, out = converted(case), case.outputs
    x, pos, sensor_type = metadata(case)
    cfg = model.config
    with torch.no_grad():
        fwd = model(x, pos, sensor_type)
        for term in FORWARD_TERMS:
            assert_float_close(fwd[term], out[f"forward.{term}"], f"forward.{term}")
        assert_float_close(fwd.reconstruction, out["forward.logits"], "forward.logits")
        assert_float_close(fwd.loss, out["loss_BrainOmniCausalTokenizerLoss"], "loss_BrainOmniCausalTokenizerLoss")

        windows = model._windows(x)
        assert_float_close(windows, out["intermediate.windows"], "intermediate.windows")
        pos_, type_ = model._sensor_inputs(x, pos, sensor_type)
        sensor_embedding = model.sensor_embed(pos_, type_)
        assert_float_close(sensor_embedding, out["intermediate.sensor_embedding"], "intermediate.sensor_embedding")
        features, quantized, codes, commit = model._latents(windows, sensor_embedding)
        assert_float_close(features, out["intermediate.encoder_features"], "intermediate.encoder_features")
        assert_float_close(quantized, out["intermediate.quantized"], "intermediate.quantized")
        assert torch.equal(codes, out["intermediate.quantizer_indices"])
        assert_float_close(commit, out["intermediate.quantizer_commit"], "intermediate.quantizer_commit")

        encoding = model.encode(x, pos, sensor_type)
        assert torch.equal(encoding.codes, out["tokenize.indices"])
        assert_float_close(encoding.embeddings, out["tokenize.embeddings"], "tokenize.embeddings")
        flat = model.flatten_codes(encoding.codes)
        assert torch.equal(flat, out["encode.codes"])
        assert torch.equal(model.unflatten_codes(flat), encoding.codes)

        # decode is stateless: metadata is passed, nothing is remembered from encode
        assert_float_close(model.decode(flat, pos, sensor_type), out["decode.full"], "decode.full")
        assert_float_close(model.decode(encoding.codes, pos, sensor_type), out["decode.full"], "decode.full (4-D)")
        step = cfg.n_neuro * cfg.num_quantizers
        assert_float_close(model.decode(flat[:, :-step], pos, sensor_type), out["decode.partial"], "decode.partial")

        level0 = model.codes_to_embeddings(encoding.codes[..., :1])
        expected = out["indices_to_embeddings.level0_only"]
        assert_float_close(level0, expected.reshape(level0.shape), "indices_to_embeddings.level0_only")


def check_train_step_parity(case: RefCase) -> None:
    """One seeded training-mode forward: the loss and the EMA-updated codebook buffers."""
    model, out = converted(case), case.outputs
    x, pos, sensor_type = metadata(case)
    model.train()
    torch.manual_seed(case.call_seed("outputs:train_step.loss"))
    with torch.no_grad():
        loss = model(x, pos, sensor_type).loss
    assert_float_close(loss, out["train_step.loss"], "train_step.loss")
    state = model.state_dict()
    recorded = {k[len("train_step.buffer.") :]: v for k, v in out.items() if k.startswith("train_step.buffer.")}
    assert recorded
    for key, value in recorded.items():
        assert_float_close(state[key], value, key)
    before = case.state_dict
    assert any(not torch.equal(state[k], before[k]) for k in recorded), "the train step must move the codebooks"


def check_kmeans_init_parity(case: RefCase, explicit: bool) -> None:
    """Zeroed codebooks + the recorded init batch and seed reproduce the recorded k-means codebooks."""
    model = converted(case)
    buffers = [
        b
        for layer in model.quantizer.rvq.layers
        for b in (
            layer._codebook.embed,
            layer._codebook.embed_avg,
            layer._codebook.cluster_size,
            layer._codebook.inited,
        )
    ]
    for buffer in buffers:
        buffer.zero_()
    x, pos, sensor_type = metadata(case, "codebook_init.")
    seed = case.procedure_seed("k-means init")
    if explicit:
        model.init_codebooks(x, pos, sensor_type, seed=seed)
    else:  # the reference's implicit init on the first forward
        torch.manual_seed(seed)
        with torch.no_grad():
            model(x, pos, sensor_type)
    state = model.state_dict()
    keys = [k for k in case.state_dict if "._codebook." in k]
    assert keys
    for key in keys:
        assert_float_close(state[key], case.state_dict[key], f"k-means {key}")


def check_streaming_matches_whole(model, x, pos=None, sensor_type=None, chunk_steps=(1, 3, 2, 5)) -> None:
    """Chunked `encode_stream` codes == `encode` codes, for chunk sizes that straddle window boundaries."""
    hop = model.config.hop_length
    with torch.no_grad():
        whole = model.encode(x, pos, sensor_type).codes
        pieces, state, start, i = [], None, 0, 0
        while start < x.shape[-1]:
            stop = min(x.shape[-1], start + chunk_steps[i % len(chunk_steps)] * hop)
            codes, state = model.encode_stream(x[..., start:stop], pos, sensor_type, state)
            pieces.append(codes)
            start, i = stop, i + 1
    assert len(pieces) > 2
    assert torch.equal(torch.cat(pieces, dim=2), whole)


def check_hop_causality(model, x, pos=None, sensor_type=None) -> None:
    """Training mode (gradients pass the quantiser): outputs before sample s never see inputs from s on.

    s is a multiple of the hop inside the last window: the SEANet autoencoder is causal at hop granularity.
    Checked for the token embeddings (encoder) and the reconstruction (encoder + decoder), atol 1e-5 as in
    the reference's own causality test.
    """
    cfg = model.config
    hop, window = cfg.hop_length, cfg.window_length
    model.train()
    for split in range(x.shape[-1] - window + hop, x.shape[-1], hop):
        source = x.clone().requires_grad_(True)
        embeddings = model.encode(source, pos, sensor_type).embeddings
        embeddings[:, :, : split // hop].sum().backward()
        _assert_no_future_gradient(source.grad, split)

        source = x.clone().requires_grad_(True)
        model(source, pos, sensor_type).reconstruction[..., :split].sum().backward()
        _assert_no_future_gradient(source.grad, split)


def _assert_no_future_gradient(grad: torch.Tensor, split: int) -> None:
    assert grad[..., :split].abs().sum() > 0, "no gradient reaches the past: the check would be vacuous"
    future = grad[..., split:]
    torch.testing.assert_close(future, torch.zeros_like(future), rtol=0, atol=1e-5)


def _latents_before_quantisation(model, x, pos=None, sensor_type=None) -> torch.Tensor:
    pos, sensor_type = model._sensor_inputs(x, pos, sensor_type)
    return model.encoder(model._windows(x), model.sensor_embed(pos, sensor_type))


def check_batch_independence(model, x, pos=None, sensor_type=None) -> None:
    """Changing sample 1 changes nothing in sample 0 (no leak across the batch).

    That the change reaches the model is checked on the latents before quantisation: the codes and the
    reconstruction of the changed sample may legitimately stay (almost) put, since a small random model's latents
    are tiny next to its decoder biases and can snap to the same or near-duplicate codewords, depending on the CPU's
    float kernels. The untouched sample keeps its codes exactly and its floats up to kernel rounding.
    """
    y = x.clone()
    y[1] = -3 * y[1].flip(-1) + 1
    with torch.no_grad():
        a = model(x, pos, sensor_type)
        b = model(y, pos, sensor_type)
        latents_a = _latents_before_quantisation(model, x, pos, sensor_type)
        latents_b = _latents_before_quantisation(model, y, pos, sensor_type)
    scale = latents_a.abs().max()
    assert (latents_a[1] - latents_b[1]).abs().max() > 1e-2 * scale, "the change of sample 1 never reached the model"
    assert torch.equal(a.codes[0], b.codes[0])
    torch.testing.assert_close(latents_b[0], latents_a[0], rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(
        b.reconstruction[0], a.reconstruction[0], rtol=1e-5, atol=1e-5 * a.reconstruction.abs().max()
    )


def check_codebook_updates_only_in_training(model, x, pos=None, sensor_type=None) -> None:
    with torch.no_grad():
        model(x, pos, sensor_type)  # initialises the codebooks (k-means on the first forward)
        before = {k: v.clone() for k, v in model.state_dict().items() if "._codebook." in k}
        model.eval()(x, pos, sensor_type)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
        model.train()(x, pos, sensor_type)
        assert any(not torch.equal(model.state_dict()[k], v) for k, v in before.items())
    model.eval()


def check_explicit_codebook_init(model, x, pos=None, sensor_type=None) -> None:
    """`codebook_init="explicit"`: forward refuses uninitialised codebooks until `init_codebooks`."""
    import pytest

    with pytest.raises(ValueError, match="init_codebooks"):
        model(x, pos, sensor_type)
    state = torch.get_rng_state()
    model.init_codebooks(x, pos, sensor_type, seed=0)
    assert torch.equal(torch.get_rng_state(), state), "a seeded init must leave the caller's RNG untouched"
    assert model.quantizer.rvq.is_initialized
    with torch.no_grad():
        assert torch.isfinite(model(x, pos, sensor_type).loss)


def check_decode_rejects_bad_codes(model, codes: torch.Tensor, pos=None, sensor_type=None) -> None:
    import pytest

    K = model.config.codebook_size
    for bad, pattern in (
        (codes + K, "outside the vocabulary"),
        (-codes - 1, "outside the vocabulary"),
        (codes.float(), "integer token ids"),
        (codes[..., :1], "RVQ levels"),
        (codes[:, :1], "channels"),
        (codes.reshape(codes.shape[0], -1)[:, :-1], "flat codes"),
    ):
        with pytest.raises(ValueError, match=pattern):
            model.decode(bad, pos, sensor_type)
