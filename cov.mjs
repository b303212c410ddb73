import { KernelShapDesign, solveKernelShap } from './dist/src/explain/kernel-shap.js';
import { seededRandom } from './dist/src/explain/random.js';
function makeGame(m, seed) { const r = seededRandom(seed); const a = Array.from({length:m},()=>r()*2-1); const b = Array.from({length:m*m},()=>(r()*2-1)*0.4);
  return (mask) => { let z=0; for (let i=0;i<m;i++){ if(!mask[i]) continue; z+=a[i]; for (let j=0;j<i;j++) if(mask[j]) z+=b[i*m+j]; } return (1/(1+Math.exp(-z)))*(1+0.3*(mask[0]&mask[1]&mask[2])); }; }
function exact(m, g) { const v=new Float64Array(2**m); const mask=new Uint8Array(m); for (let s=0;s<2**m;s++){for(let i=0;i<m;i++)mask[i]=(s>>i)&1; v[s]=g(mask);} const f=[1]; for(let i=1;i<=m;i++)f[i]=f[i-1]*i; const p=new Float64Array(m);
  for (let s=0;s<2**m;s++){let k=0; for(let i=0;i<m;i++)k+=(s>>i)&1; const w=f[k]*f[m-k-1]/f[m]; for(let i=0;i<m;i++) if(!((s>>i)&1)) p[i]+=w*(v[s|(1<<i)]-v[s]);} return p; }
for (const [m, budget] of [[16, 300], [16, 800], [16, 1600], [16, 2050], [16, 3000], [12, 600], [12, 1500], [20, 2088], [8, 100]]) {
  let inside=0, total=0, err=0;
  for (let seed=0; seed<60; seed++) { const g = makeGame(m, 900+seed%6); const ex = exact(m, g);
    const d = KernelShapDesign.plan(m, budget, seededRandom(seed)); const vals = d.masks.map(x=>Float64Array.of(g(x)));
    const sol = solveKernelShap(d, vals, Float64Array.of(g(new Uint8Array(m).fill(1))), Float64Array.of(g(new Uint8Array(m))));
    let num=0, den=0; for (let i=0;i<m;i++){ total++; if (Math.abs(sol.values[0][i]-ex[i]) <= 1.96*sol.standardErrors[0][i]) inside++; num+=(sol.values[0][i]-ex[i])**2; den+=ex[i]**2; } err+=num/den; }
  console.log(m, budget, 'coverage', (inside/total*100).toFixed(1), 'relerr', (err/60).toExponential(2));
}
