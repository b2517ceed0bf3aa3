"""diffusers' `UNet2DConditionModel` as Stable Diffusion 1.x and 2.x build it, as jaxgen's
`UNet` with `attention="transformer"` (`models.spatial_transformer`). The key map is the
U-Net's (`unet2d.key_map`); this module reads the config.

SD 1.x: cross_attention_dim 768, 1x1-conv projections, `attention_head_dim` 8, which for
historical reasons is a count of heads (diffusers reads it as `num_attention_heads` when that
is not given). SD 2.x: 1024, linear projections, `attention_head_dim` [5, 10, 20, 20] heads per
level (64 channels each), v-prediction for the 768 px models and `upcast_attention` for 2.1.
What SDXL, ControlNets, LCMs and image variations add (addition embeddings, conditioning
projections) is refused by name.
"""

from jaxgen.pretrained.configs import check_options
from jaxgen.pretrained.unet2d import layout
from jaxgen.pretrained.weights import PretrainedError

WHAT = "UNet2DConditionModel"
# UNet2DConditionModel's defaults for options a config.json leaves out (diffusers 0.42).
DEFAULTS = dict(
    sample_size=None, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "DownBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "CrossAttnUpBlock2D"),
    only_cross_attention=False, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    downsample_padding=1, mid_block_scale_factor=1, dropout=0.0, act_fn="silu",
    norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=1280,
    transformer_layers_per_block=1, reverse_transformer_layers_per_block=None,
    encoder_hid_dim=None, encoder_hid_dim_type=None, attention_head_dim=8,
    num_attention_heads=None, dual_cross_attention=False, use_linear_projection=False,
    class_embed_type=None, addition_embed_type=None, addition_time_embed_dim=None,
    num_class_embeds=None, upcast_attention=False, resnet_time_scale_shift="default",
    resnet_skip_time_act=False, resnet_out_scale_factor=1.0, time_embedding_type="positional",
    time_embedding_dim=None, time_embedding_act_fn=None, timestep_post_act=None,
    time_cond_proj_dim=None, conv_in_kernel=3, conv_out_kernel=3,
    projection_class_embeddings_input_dim=None, attention_type="default",
    class_embeddings_concat=False, mid_block_only_cross_attention=None,
    cross_attention_norm=None, addition_embed_type_num_heads=64,
)
ALLOWED = {**{k: None for k in DEFAULTS},
           "center_input_sample": (False,), "mid_block_type": ("UNetMidBlock2DCrossAttn",),
           "only_cross_attention": (False,), "mid_block_scale_factor": (1,),
           "act_fn": ("silu",), "reverse_transformer_layers_per_block": (None,),
           "encoder_hid_dim": (None,), "encoder_hid_dim_type": (None,),
           "dual_cross_attention": (False,), "class_embed_type": (None,),
           "addition_embed_type": (None,), "addition_time_embed_dim": (None,),
           "num_class_embeds": (None,), "resnet_time_scale_shift": ("default",),
           "resnet_skip_time_act": (False,), "resnet_out_scale_factor": (1.0,),
           "time_embedding_type": ("positional",), "time_embedding_act_fn": (None,),
           "timestep_post_act": (None,), "time_cond_proj_dim": (None,),
           "conv_in_kernel": (3,), "conv_out_kernel": (3,),
           "projection_class_embeddings_input_dim": (None,), "attention_type": ("default",),
           "class_embeddings_concat": (False,), "mid_block_only_cross_attention": (None, False),
           "cross_attention_norm": (None,)}


def _per_level(value, levels: int, name: str) -> list:
    values = list(value) if isinstance(value, list | tuple) else [value] * levels
    if len(values) != levels:
        raise PretrainedError(f"{WHAT}: {name} has {len(values)} entries for {levels} levels")
    return values


def unet_kwargs(config: dict) -> dict:
    """`jaxgen.models.UNet` keyword arguments (all but dtype and rngs) of a diffusers
    `UNet2DConditionModel` config."""
    check_options(config, ALLOWED, WHAT)
    c = {**DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
    (height, width), base, mults, resolutions = layout(
        c, WHAT, ("DownBlock2D", "UpBlock2D"), ("CrossAttnDownBlock2D", "CrossAttnUpBlock2D"))
    levels = len(mults)
    if isinstance(c["cross_attention_dim"], list | tuple):
        raise PretrainedError(f"{WHAT}: a cross_attention_dim per level is not built by jaxgen")
    if not isinstance(c["layers_per_block"], int):
        raise PretrainedError(f"{WHAT}: layers_per_block per level is not built by jaxgen")
    # diffusers' naming mix-up: without num_attention_heads, attention_head_dim is the count.
    heads = _per_level(c["num_attention_heads"] or c["attention_head_dim"], levels,
                       "num_attention_heads")
    attending = [i for i in range(levels) if height // 2**i in resolutions]
    # The mid block takes the last level's heads (diffusers: num_attention_heads[-1]).
    pairs = [(base * mults[i], heads[i]) for i in attending] + [(base * mults[-1], heads[-1])]
    if len({h for _, h in pairs}) == 1:
        num_heads, head_channels = pairs[0][1], 0
    elif len({w // h for w, h in pairs}) == 1 and all(w % h == 0 for w, h in pairs):
        num_heads, head_channels = 1, pairs[0][0] // pairs[0][1]
    else:
        raise PretrainedError(f"{WHAT}: attention heads {heads} are neither one count nor one "
                              "width across levels")
    depths = set(_per_level(c["transformer_layers_per_block"], levels,
                            "transformer_layers_per_block"))
    if len(depths) != 1:
        raise PretrainedError(f"{WHAT}: transformer_layers_per_block {sorted(depths)} differ by "
                              "level; jaxgen builds one depth")
    return dict(
        data_shape=(height, width, c["in_channels"]), channels=base, channel_mults=mults,
        num_res_blocks=c["layers_per_block"], attention_resolutions=resolutions,
        dropout=float(c["dropout"]), num_heads=num_heads, head_channels=head_channels,
        num_classes=0, context_dim=c["cross_attention_dim"], scale_shift=False,
        out_channels=c["out_channels"], norm_groups=c["norm_num_groups"],
        norm_eps=float(c["norm_eps"]), downsample_padding=c["downsample_padding"],
        freq_shift=float(c["freq_shift"]), flip_sin_to_cos=bool(c["flip_sin_to_cos"]),
        attention="transformer", transformer_depth=depths.pop(),
        linear_projection=bool(c["use_linear_projection"]),
        upcast_attention=bool(c["upcast_attention"]))
