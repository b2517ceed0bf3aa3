"""diffusers' `UNet2DModel` (DDPM's CIFAR-10, CelebA-HQ, LSUN and church models and their
family) as jaxgen's `UNet`, and back.

`unet_kwargs(config)` turns the model's `config.json` into `UNet` arguments, refusing what
jaxgen's U-Net does not compute; `key_map(unet)` names each of its parameters as diffusers
does; `config_of(kwargs)` is the way back, for export. The two networks are the same design
(Ho et al. 2020): the correspondences that matter are spelled out where they are made.
"""

from jaxgen.models.spatial_transformer import SpatialTransformer
from jaxgen.models.unet import AttentionBlock, Downsample, ResBlock, Upsample
from jaxgen.pretrained.configs import check_options
from jaxgen.pretrained.convert import Entry, module_entries
from jaxgen.pretrained.weights import PretrainedError

WHAT = "UNet2DModel"
# UNet2DModel's own defaults, for options a config.json leaves out (diffusers 0.42).
DEFAULTS = dict(
    sample_size=None, in_channels=3, out_channels=3, center_input_sample=False,
    time_embedding_type="positional", time_embedding_dim=None, freq_shift=0,
    flip_sin_to_cos=True,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
    mid_block_type="UNetMidBlock2D",
    up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(224, 448, 672, 896), layers_per_block=2, mid_block_scale_factor=1,
    downsample_padding=1, downsample_type="conv", upsample_type="conv", dropout=0.0,
    act_fn="silu", attention_head_dim=8, norm_num_groups=32, attn_norm_num_groups=None,
    norm_eps=1e-5, resnet_time_scale_shift="default", add_attention=True,
    class_embed_type=None, num_class_embeds=None, num_train_timesteps=None,
)
ALLOWED = {**{k: None for k in DEFAULTS},
           "center_input_sample": (False,), "time_embedding_type": ("positional",),
           "mid_block_type": ("UNetMidBlock2D",), "mid_block_scale_factor": (1,),
           "downsample_type": ("conv",), "upsample_type": ("conv",), "act_fn": ("silu",),
           "resnet_time_scale_shift": ("default", "scale_shift"), "add_attention": (True,),
           "class_embed_type": (None,)}

_RES = {"norm1": "norm1", "conv1": "conv1", "emb": "time_emb_proj", "norm2": "norm2",
        "conv2": "conv2", "skip": "conv_shortcut"}
# diffusers < 0.15 stored the attention of these blocks as query/key/value/proj_attn; it
# renames them when it loads such a checkpoint, and so do we.
_ATTN = {"norm": ("group_norm", None), "attn.query": ("to_q", "query"),
         "attn.key": ("to_k", "key"), "attn.value": ("to_v", "value"),
         "attn.out": ("to_out.0", "proj_attn")}
_PROJ = {"query": "to_q", "key": "to_k", "value": "to_v", "out": "to_out.0"}
_LAYER = {"norm1": "norm1", "norm2": "norm2", "norm3": "norm3", "ff.proj": "ff.net.0.proj",
          "ff.out": "ff.net.2", **{f"attn{i}.{ours}": f"attn{i}.{theirs}"
                                   for i in (1, 2) for ours, theirs in _PROJ.items()}}


def _sample_size(config, what) -> tuple[int, int]:
    size = config["sample_size"]
    if size is None:
        raise PretrainedError(f"{what}: config.json gives no sample_size, the image size the "
                              "model was trained at")
    return (size, size) if isinstance(size, int) else tuple(size)


def layout(c: dict, what: str, plain: tuple[str, str], attending: tuple[str, str]):
    """((H, W), base width, channel multipliers, attention resolutions) of a diffusers U-Net
    config `c` whose down/up blocks are `plain` (DownBlock2D, UpBlock2D) or `attending`."""
    height, width = _sample_size(c, what)
    widths, down, up = list(c["block_out_channels"]), list(c["down_block_types"]), list(
        c["up_block_types"])
    if not len(widths) == len(down) == len(up):
        raise PretrainedError(f"{what}: block_out_channels, down_block_types and "
                              "up_block_types must have one entry per level")
    known = {*plain, *attending}
    unknown = sorted({*down, *up} - known)
    if unknown:
        raise PretrainedError(f"{what}: unsupported block type {unknown[0]} (jaxgen builds "
                              f"{', '.join(sorted(known))})")
    attn_down = [t == attending[0] for t in down]
    attn_up = [t == attending[1] for t in reversed(up)]
    if attn_down != attn_up:
        raise PretrainedError(f"{what}: attention at different levels on the way down {down} "
                              f"and up {up}; jaxgen's U-Net attends at the same resolutions")
    base = widths[0]
    if any(w % base for w in widths):
        raise PretrainedError(f"{what}: block_out_channels {widths} are not multiples of the "
                              f"first ({base})")
    if c["time_embedding_dim"] not in (None, 4 * base):
        raise PretrainedError(f"{what}: time_embedding_dim={c['time_embedding_dim']} (jaxgen's "
                              f"is 4 x block_out_channels[0] = {4 * base})")
    resolutions = tuple(height // 2**i for i, a in enumerate(attn_down) if a)
    return (height, width), base, tuple(w // base for w in widths), resolutions


def unet_kwargs(config: dict) -> dict:
    """`jaxgen.models.UNet` keyword arguments (all but dtype and rngs) of a diffusers
    `UNet2DModel` config."""
    check_options(config, ALLOWED, WHAT)
    c = {**DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
    (height, width), base, mults, resolutions = layout(
        c, WHAT, ("DownBlock2D", "UpBlock2D"), ("AttnDownBlock2D", "AttnUpBlock2D"))
    groups, attn_groups = c["norm_num_groups"], c["attn_norm_num_groups"]
    if c["resnet_time_scale_shift"] == "scale_shift" and attn_groups is None:
        # diffusers' UNetMidBlock2D then builds its attention without a GroupNorm.
        raise PretrainedError(f"{WHAT}: resnet_time_scale_shift='scale_shift' with "
                              "attn_norm_num_groups null (a mid-block attention without a "
                              "norm) is not built by jaxgen")
    if attn_groups not in (None, groups):
        raise PretrainedError(f"{WHAT}: attn_norm_num_groups={attn_groups} differs from "
                              f"norm_num_groups={groups}")
    num_class_embeds = c["num_class_embeds"]
    if num_class_embeds is not None and num_class_embeds < 2:
        raise PretrainedError(f"{WHAT}: num_class_embeds={num_class_embeds}; jaxgen's "
                              "class-conditional U-Net keeps K classes and a null row")
    return dict(
        data_shape=(height, width, c["in_channels"]), channels=base,
        channel_mults=mults, num_res_blocks=c["layers_per_block"],
        attention_resolutions=resolutions,
        dropout=float(c["dropout"]), num_heads=1, head_channels=c["attention_head_dim"] or 0,
        # diffusers' K class rows are jaxgen's K - 1 classes and the null row (index K - 1).
        num_classes=(num_class_embeds or 1) - 1, context_dim=0,
        scale_shift=c["resnet_time_scale_shift"] == "scale_shift",
        out_channels=c["out_channels"], norm_groups=groups, norm_eps=float(c["norm_eps"]),
        downsample_padding=c["downsample_padding"], freq_shift=float(c["freq_shift"]),
        flip_sin_to_cos=bool(c["flip_sin_to_cos"]))


def _get(module, dotted: str, path: tuple):
    for part in dotted.split("."):
        module, path = getattr(module, part), (*path, part)
    return module, path


def attention_entries(block: AttentionBlock, path, key):
    """Entries of a self-attention block (GroupNorm, q/k/v/out), each also under the names
    checkpoints saved before diffusers 0.15 used."""
    for ours, (theirs, old) in _ATTN.items():
        layer, sub = _get(block, ours, path)
        for entry in module_entries(layer, sub, f"{key}.{theirs}"):
            if old is None:
                yield entry
            else:
                suffix = entry.keys[0].rsplit(".", 1)[1]
                yield entry._replace(keys=(*entry.keys, f"{key}.{old}.{suffix}"))


def _block_entries(block, path, key):
    if isinstance(block, ResBlock):
        for ours, theirs in _RES.items():
            layer = getattr(block, ours)
            if layer is not None:
                yield from module_entries(layer, (*path, ours), f"{key}.{theirs}")
    elif isinstance(block, AttentionBlock):
        if block.cross is not None:
            raise PretrainedError(f"{WHAT} has no cross-attention; this U-Net has")
        yield from attention_entries(block, path, key)
    elif isinstance(block, SpatialTransformer):
        for name in ("norm", "proj_in", "proj_out"):
            yield from module_entries(getattr(block, name), (*path, name), f"{key}.{name}")
        for i, layer in enumerate(block.layers):
            for ours, theirs in _LAYER.items():
                module, sub = _get(layer, ours, (*path, "layers", i))
                yield from module_entries(module, sub, f"{key}.transformer_blocks.{i}.{theirs}")
    elif isinstance(block, Downsample | Upsample):
        yield from module_entries(block.conv, (*path, "conv"), f"{key}.conv")
    else:
        raise TypeError(f"no diffusers name for {type(block).__name__}")


def key_map(unet) -> list[Entry]:
    """diffusers' name for every parameter of `unet` (a `UNet`, concrete or abstract)."""
    entries = [*module_entries(unet.conv_in, ("conv_in",), "conv_in"),
               *module_entries(unet.time_mlp[0], ("time_mlp", 0), "time_embedding.linear_1"),
               *module_entries(unet.time_mlp[1], ("time_mlp", 1), "time_embedding.linear_2")]
    if unet.class_embed is not None:
        entries += module_entries(unet.class_embed, ("class_embed",), "class_embedding")
    # jaxgen keeps each level's blocks in one flat list, [res (+ attention)] per layer and
    # the resampler last; diffusers nests them as blocks.i.{resnets,attentions}.j.
    for side, blocks, kinds in (("down", unet.down, "down_blocks"),
                                ("up", unet.up, "up_blocks")):
        level, layer = 0, 0
        for k, group in enumerate(blocks):
            if isinstance(group[0], Downsample | Upsample):
                name = "downsamplers" if side == "down" else "upsamplers"
                entries += _block_entries(group[0], (side, k, 0), f"{kinds}.{level}.{name}.0")
                level, layer = level + 1, 0
                continue
            entries += _block_entries(group[0], (side, k, 0), f"{kinds}.{level}.resnets.{layer}")
            if len(group) > 1:
                entries += _block_entries(group[1], (side, k, 1),
                                          f"{kinds}.{level}.attentions.{layer}")
            layer += 1
    for i, name in enumerate(("resnets.0", "attentions.0", "resnets.1")):
        entries += _block_entries(unet.mid[i], ("mid", i), f"mid_block.{name}")
    entries += module_entries(unet.norm_out, ("norm_out",), "conv_norm_out")
    entries += module_entries(unet.conv_out, ("conv_out",), "conv_out")
    return entries


def config_of(kwargs: dict, head_dims: set[int], groups: set[int]) -> dict:
    """The diffusers `UNet2DModel` config of a jaxgen U-Net built from `kwargs`, whose
    attention blocks have `head_dims` channels per head ({None}: one head each) and whose
    GroupNorms have `groups`;
    refuses what diffusers' class cannot express."""
    if kwargs.get("context_dim"):
        raise PretrainedError("a U-Net with cross-attention (a latent diffusion run's) has no "
                              f"{WHAT} counterpart")
    if len(head_dims) > 1:
        raise PretrainedError(f"this U-Net's attention heads are {sorted(head_dims, key=str)} "
                              "channels "
                              f"wide at different levels; {WHAT} has one attention_head_dim: "
                              "train with model.head_channels set")
    if len(groups) > 1:
        raise PretrainedError(f"this U-Net's GroupNorms use {sorted(groups)} groups at different "
                              f"widths; {WHAT} has one norm_num_groups: train with "
                              "model.norm_groups set")
    height, width, in_channels = kwargs["data_shape"]
    mults, levels = tuple(kwargs["channel_mults"]), len(kwargs["channel_mults"])
    attn = [height // 2**i in kwargs["attention_resolutions"] for i in range(levels)]
    (group,), (head_dim,) = groups, head_dims
    num_classes = kwargs.get("num_classes", 0)
    padding = kwargs.get("downsample_padding")
    return dict(
        _class_name=WHAT, sample_size=height if height == width else [height, width],
        in_channels=in_channels, out_channels=kwargs.get("out_channels") or in_channels,
        center_input_sample=False, time_embedding_type="positional", time_embedding_dim=None,
        freq_shift=kwargs.get("freq_shift", 1.0), flip_sin_to_cos=kwargs.get(
            "flip_sin_to_cos", False),
        down_block_types=["AttnDownBlock2D" if a else "DownBlock2D" for a in attn],
        mid_block_type="UNetMidBlock2D",
        up_block_types=["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)],
        block_out_channels=[kwargs["channels"] * m for m in mults],
        layers_per_block=kwargs["num_res_blocks"], mid_block_scale_factor=1,
        downsample_padding=0 if padding is None else padding, downsample_type="conv",
        upsample_type="conv", dropout=kwargs.get("dropout", 0.0), act_fn="silu",
        attention_head_dim=head_dim, norm_num_groups=group, attn_norm_num_groups=group,
        norm_eps=kwargs.get("norm_eps", 1e-6),
        resnet_time_scale_shift="scale_shift" if kwargs.get("scale_shift") else "default",
        add_attention=True, class_embed_type=None,
        num_class_embeds=num_classes + 1 if num_classes else None)


