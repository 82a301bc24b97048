"""Every finetuning method behind one registry: ReFT and the paper's baselines, matched.

    from baselines import build_method, save_method, load_method, count_parameters
    method, model = build_method(hf_model, {"name": "lora", "r": 32, "lora_alpha": 64,
                                            "target_modules": ["q_proj", "v_proj"]})
    train(model, dataset, SupervisedCollator(pad_id, locate=method.locate(model)), training_config)
    save_method(model, "out/")            # peft's own format + method.json
    count_parameters(model).percent       # the paper's Params%

The registry below is the one extension point: a method is one module and one line here.
"""

from .bottleneck import BottleneckConfig, BottleneckMethod
from .full import FullFinetuning
from .params import ParamCount, count_parameters
from .peft_methods import AnyPeftMethod, PeftMethod
from .reft_method import ReftLoraMethod, ReftMethod
from .untrained import Untrained
from .registry import (METHODS, Method, build_method, get_method, load_method, read_method_spec,
                       register_method, save_method)

register_method("reft", ReftMethod())
register_method("loreft", ReftMethod("loreft"))
register_method("direft", ReftMethod("direft"))
register_method("reft_lora", ReftLoraMethod())
register_method("lora", PeftMethod("LORA"))
register_method("dora", PeftMethod("LORA", use_dora=True))
register_method("prefix_tuning", PeftMethod("PREFIX_TUNING"))
register_method("prompt_tuning", PeftMethod("PROMPT_TUNING"))
register_method("ia3", PeftMethod("IA3"))
register_method("vera", PeftMethod("VERA"))
register_method("loha", PeftMethod("LOHA"))
register_method("lokr", PeftMethod("LOKR"))
register_method("peft", AnyPeftMethod())
register_method("adapter_series", BottleneckMethod("series"))
register_method("adapter_parallel", BottleneckMethod("parallel"))
register_method("full", FullFinetuning())
register_method("none", Untrained())

__all__ = ["METHODS", "Method", "register_method", "get_method", "build_method", "save_method",
           "load_method", "read_method_spec", "count_parameters", "ParamCount", "BottleneckConfig",
           "PeftMethod", "ReftMethod"]
