import torch,json,gzip,shutil,os
from torch.profiler import profile, ProfilerActivity, record_function
from transformers import AutoModelForCausalLM, Qwen2MoeConfig
cfg=Qwen2MoeConfig(hidden_size=2048,intermediate_size=5632,moe_intermediate_size=1408,shared_expert_intermediate_size=5632,num_hidden_layers=12,num_attention_heads=16,num_key_value_heads=16,num_experts=60,num_experts_per_tok=4,decoder_sparse_step=1,mlp_only_layers=[0,1],vocab_size=151936,max_position_embeddings=16384)
cfg._attn_implementation="sdpa"
with torch.device("cuda"): m=AutoModelForCausalLM.from_config(cfg,dtype=torch.bfloat16)
m.eval()
O=os.environ.get("OUT", ".")  # output directory
json.dump(cfg.to_dict(),open(f"{O}/qwen2moe_config.json","w"),indent=1,default=str)
json.dump({"torch":torch.__version__,"gpu":torch.cuda.get_device_name(0),"cuda":torch.version.cuda,"transformers":__import__("transformers").__version__},open(f"{O}/env.json","w"))
with torch.inference_mode():
  ctx=torch.randint(0,cfg.vocab_size,(32,1000),device="cuda")
  cache=m(input_ids=ctx,use_cache=True).past_key_values
  tok=torch.randint(0,cfg.vocab_size,(32,1),device="cuda")
  def step():
    global cache
    cache=m(input_ids=tok,past_key_values=cache,use_cache=True).past_key_values
  for _ in range(2): step()
  torch.cuda.synchronize()
  with profile(activities=[ProfilerActivity.CPU,ProfilerActivity.CUDA],record_shapes=True,with_stack=True) as p:
    for i in range(5):
      with record_function(f"execute_model_step_{i}"): step()
    torch.cuda.synchronize()
  p.export_chrome_trace("/tmp/t.json")
with open("/tmp/t.json","rb") as f, gzip.open(f"{O}/qwen2moe_decode.trace.json.gz","wb",6) as g: shutil.copyfileobj(f,g)
print(os.path.getsize(f"{O}/qwen2moe_decode.trace.json.gz"))
