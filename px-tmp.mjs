import sharp from 'sharp';
const [w,h,out] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const data = Buffer.alloc(w*h*3);
for (let y=0;y<h;y++) for (let x=0;x<w;x++){ const o=(y*w+x)*3; data[o]=128+100*Math.sin(x/37); data[o+1]=128+100*Math.sin(y/23); data[o+2]=128+100*Math.sin((x+y)/51);}
await sharp(data,{raw:{width:w,height:h,channels:3}}).jpeg({quality:90}).toFile(out);
