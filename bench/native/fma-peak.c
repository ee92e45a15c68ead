// One core's 128-bit FMA peak (bench/lib/common.ts FMA_PEAK_GFLOPS): 12 independent chains of _mm_fmadd_ps, 8 flops
// each. Build and run: gcc -O3 -mfma -funroll-loops -o /tmp/fma-peak bench/native/fma-peak.c && /tmp/fma-peak
// (-O3 -funroll-loops matters: at -O2 the chains go through memory and the loop measures a third of the peak).
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
int main(){ __m128 a[12]; for(int i=0;i<12;i++) a[i]=_mm_set1_ps(1.0f+i*1e-7f);
 __m128 b=_mm_set1_ps(0.999999f), c=_mm_set1_ps(1e-7f);
 long N=400000000; struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0);
 for(long n=0;n<N;n++){ for(int i=0;i<12;i++) a[i]=_mm_fmadd_ps(a[i],b,c);}
 clock_gettime(CLOCK_MONOTONIC,&t1); double s=(t1.tv_sec-t0.tv_sec)+(t1.tv_nsec-t0.tv_nsec)*1e-9;
 float r=0; for(int i=0;i<12;i++) r+=_mm_cvtss_f32(a[i]);
 printf("%.1f GFLOP/s (%f)\n", N*12.0*8/s/1e9, r); }
