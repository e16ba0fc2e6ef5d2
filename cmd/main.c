/* Placeholder until the command table lands. */
#include <stdio.h>

int main(void);

int
main(void)
{
	printf("samail %s\n", SAMAIL_VERSION);
	return 0;
}
