"""A small real demo trace for the README (HF transformers Llama-3.1-8B shape, random weights, SDPA):
3 decode steps at batch 64 over 512 tokens of context, torch.profiler with CPU+CUDA, shapes and stacks."""
import gzip, json, os, shutil, torch
from torch.profiler import profile, ProfilerActivity, record_function
from transformers import AutoModelForCausalLM, LlamaConfig
OUT = os.environ["OUT"]; W = "/tmp/demo"; os.makedirs(W, exist_ok=True)
cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=128256, max_position_embeddings=16384, rope_theta=500000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False)
cfg._attn_implementation = "sdpa"
with torch.device("cuda"):
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
m.eval()
json.dump(cfg.to_dict(), open(f"{W}/config.json", "w"), indent=1, default=str)
with torch.inference_mode():
    ctx = torch.randint(0, cfg.vocab_size, (64, 512), device="cuda")
    cache = m(input_ids=ctx, use_cache=True).past_key_values
    tok = torch.randint(0, cfg.vocab_size, (64, 1), device="cuda")
    def step():
        global cache
        cache = m(input_ids=tok, past_key_values=cache, use_cache=True).past_key_values
    for _ in range(2): step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True, with_stack=True) as p:
        for i in range(3):
            with record_function(f"execute_model_step_{i}"):
                step()
        torch.cuda.synchronize()
p.export_chrome_trace(f"{W}/llama8b_decode_b64.trace.json")
with open(f"{W}/llama8b_decode_b64.trace.json", "rb") as f, gzip.open(f"{W}/llama8b_decode_b64.trace.json.gz", "wb", 9) as g:
    shutil.copyfileobj(f, g)
os.remove(f"{W}/llama8b_decode_b64.trace.json")
import transformers
json.dump({"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0),
           "transformers": transformers.__version__}, open(f"{W}/env.json", "w"))
shutil.copy(__file__, W)
os.system(f"cd {W} && tar cf {OUT}/demo.tar . && ls -la {W}")
