import json,glob,os,statistics as st,re
R='/work/wt/bench/docs/results/2026-12-06/refactor/'
# per-run table and medians of the fan-out runs; foreign CPU from top.txt samples: processes other than ours
samples=[];cur=None
for line in open(R+'top.txt'):
    if re.match(r'^\d\d:\d\d:\d\d$',line.strip()): cur=[line.strip(),0.0]; samples.append(cur); continue
    f=line.split()
    if len(f)>=12 and f[0].isdigit():
        if not re.match(r'(switchboard|sbload|postgres|top|curl|bash)',f[11]): cur[1]+=float(f[8])
def t2s(t): h,m,s=map(int,t.split(':')); return h*3600+m*60+s
win={}
for line in open(R+'load.txt'):
    m=re.match(r'fanout (\S+) (start|end) (\S+)',line)
    if m: win.setdefault(m.group(1),{})[m.group(2)]=t2s(m.group(3))
rows={'before':[],'after':[]}
for f in sorted(glob.glob(R+'fanout/*.json')):
    d=json.load(open(f)); fo=d['fanout']; s=d['server']; name=os.path.basename(f)[11:-5]
    w,i=name.split('-'); ws=win.get(name,{})
    fc=[c for t,c in samples if ws and ws['start']<=t2s(t)<=ws['end']]
    r=dict(run=name,dps=fo['deliveries_per_second'],p50=fo['delivery_latency']['p50_ms'],p95=fo['delivery_latency']['p95_ms'],p99=fo['delivery_latency']['p99_ms'],
      s50=fo['commit_latency']['p50_ms'],s95=fo['commit_latency']['p95_ms'],cpu=s['cpu_steady_percent'],lost=fo['lost'],dups=fo['duplicates'],err=d['errors_total'],
      us=s['cpu_steady_seconds']/(fo['delivered'])*1e6 if False else s['cpu_steady_percent']/100/fo['deliveries_per_second']*1e6,
      foreign=(sum(fc)/len(fc) if fc else float('nan')), start=d['date'][11:19])
    rows[w].append(r)
    print("| %s | %s | %s | %.0f | %.1f / %.1f / %.1f | %.1f / %.1f | %.0f %% | %.1f | %d / %d | %.0f %% |"%(w,i,r['start'],r['dps'],r['p50'],r['p95'],r['p99'],r['s50'],r['s95'],r['cpu'],r['us'],r['lost'],r['dups'],r['foreign']))
for label,sel in [('runs 1-5 (unprofiled)',lambda r: r['run'][-1] in '12345'),('runs 1-3 (the planned three)',lambda r: r['run'][-1] in '123')]:
    med={}
    for w in rows:
        med[w]={k:st.median([r[k] for r in rows[w] if sel(r)]) for k in ['dps','p50','p95','p99','s50','s95','cpu','us','lost','foreign']}
        print(label,w,{k:round(v,1) for k,v in med[w].items()})
    print(label,'ratio after/before',{k:round(med['after'][k]/med['before'][k],3) for k in med['after'] if med['before'][k]})
