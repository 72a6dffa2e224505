/**
 * The most common passwords and password stems, lower case, after the best-known public
 * breach lists (the NCSC top 100k and the RockYou leak) and the words people reuse for
 * a health service. Short entries matter too: the policy also refuses a common entry
 * with digits or symbols added around it ("Password2024!"), which is how most
 * 12-character passwords are made from them.
 */
const list = `
123456 123456789 12345678 12345 1234567 1234567890 111111 123123 000000 654321 666666 121212
112233 123321 987654321 11111111 696969 159753 123654 147258369 1234 4321 2580 7777777
password password1 password12 password123 password1234 passw0rd p4ssword pass1234 passpass
passwort motdepasse contrasena senha parola wachtwoord haslo
qwerty qwerty1 qwerty12 qwerty123 qwertyuiop qwertyui qwertz azerty asdfgh asdfghjkl asdf1234
zxcvbnm zxcvbn qazwsx 1qaz2wsx 1qaz2wsx3edc zaq12wsx zaq1zaq1 1q2w3e4r 1q2w3e4r5t 1q2w3e
1q2w3e4r5t6y q1w2e3r4 q1w2e3r4t5 qweasd qweasdzxc asdasd asd123 qwe123 aaaaaa abcdef abc123
abcd1234 abcdefg abcdefgh a1b2c3 a1b2c3d4 1a2b3c4d 123qwe 123abc 123asd qwerty12345
iloveyou iloveu iloveyou1 ilovegod iloveme loveyou lovely loveme love123 mylove
letmein letmein1 welcome welcome1 welcome123 hello hello123 hellohello helloworld
admin admin123 administrator root toor master master123 changeme changeit default guest
test test123 testing tester secret secret123 private access access14 login login123 user
trustno1 whatever nothing something anything everything forever always never
monkey dragon shadow sunshine princess football baseball basketball soccer hockey
superman batman spiderman ironman starwars pokemon naruto minecraft fortnite
michael jennifer jessica ashley daniel thomas robert charlie andrew joshua matthew
jordan jordan23 michelle nicole hannah amanda justin taylor anthony william
mustang ferrari porsche corvette harley yamaha
cheese cookie chocolate banana orange apple pepper ginger summer winter spring autumn
flower purple yellow silver golden diamond angel angels heaven
freedom liberty america canada london paris india mumbai delhi bangalore chennai
killer hunter ranger soldier warrior ninja pirate knight wizard
computer internet google facebook youtube twitter instagram whatsapp linkedin
samsung iphone android nokia microsoft windows apple123 macbook
buster tigger maggie ginger coffee bailey sophie lucky molly bella daisy rocky
jesus christ god blessed blessing faith hope grace
family mother father sister brother daughter children
happy smile sunshine1 rainbow butterfly unicorn
money dollar cash million rich business
hottie sexy lover lovers babygirl babyboy baby123 sweety sweetheart honey
qwerty123456 qwertyuiop123 password12345 123456789012 12345678910 1234567891 0987654321
abcdefghijkl abcdefghijklmnop aaaaaaaaaaaa 111111111111 123123123123 abcabcabcabc
iloveyou1234 iloveyou123 letmein12345 welcome12345 changeme123 trustno1trustno1
passwordpassword mypassword mypassword123 yourpassword newpassword oldpassword
thisismypassword mysecretpassword supersecret topsecret verysecret
correcthorsebatterystaple correcthorse horsebatterystaple
rockyou linkinpark metallica nirvana eminem beyonce
asdfasdf asdfqwer qwerasdf zxcvasdf 1qazxsw2 2wsxzaq1 xsw2zaq1 zaq1xsw2
poiuytrewq lkjhgfdsa mnbvcxz ytrewq
starwars1 princess1 sunshine123 football1 baseball1 monkey123 dragon123 shadow123
master1 killer123 hunter2 superman123 batman123
telemed telemedicine telehealth patient patients doctor doctors health healthcare
hospital clinic medical medicine nurse pharmacy emergency ambulance paramedic
consultation appointment wellness fitness
telemedpatient telemed123 patient123 doctor123 health123
`;

/** Common passwords and stems, lower case. */
export const commonPasswords: ReadonlySet<string> = new Set(list.split(/\s+/).filter((entry) => entry !== ""));
