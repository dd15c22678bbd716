// expect: syntax@3:17
const ok: number = 1;
const broken = (;
